"""Fixtures of the money-in tests: the M-Pesa harness (our server and the Daraja simulator over real HTTP, on
the run's real PostgreSQL) and helpers to confirm a bank_to_mpesa and pay into the paybill."""

from __future__ import annotations

from tests.mpesa.conftest import client, harness, idle, sim  # noqa: F401  (fixtures used by these tests)
