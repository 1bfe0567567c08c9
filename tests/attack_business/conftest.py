"""Fixtures of the outside attack on business accounts (issue 23): the real `ongea-pesa serve` of
tests/server_conv on the run's PostgreSQL, and users made as that harness makes them."""

from __future__ import annotations

from tests.server_conv.conftest import make_user, server  # noqa: F401  (fixtures used by these tests)
