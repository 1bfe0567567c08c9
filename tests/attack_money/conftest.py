"""Fixtures of the outside attack on the money path: the M-Pesa harness of tests/mpesa (our server and the
Daraja simulator over real HTTP, on the run's real PostgreSQL)."""

from __future__ import annotations

from tests.mpesa.conftest import client, harness, idle, sim  # noqa: F401  (fixtures used by these tests)
