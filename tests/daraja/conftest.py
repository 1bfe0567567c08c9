"""Daraja-as-it-behaves tests run on the M-Pesa harness: the simulator and our server over real HTTP, on the
run's real PostgreSQL database."""

from __future__ import annotations

from tests.mpesa.conftest import client, harness, sim  # noqa: F401 - fixtures shared with tests/mpesa
from tests.mpesa.test_crash import crash_env  # noqa: F401 - the SIGKILL harness
