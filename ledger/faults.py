"""Crash injection for the crash tests: `ONGEA_FAULT=<point>` makes a process SIGKILL itself at that point of
the money path, so a test can prove a crash there neither loses nor doubles a payment.

Inert unless a test sets it: nothing happens without `ONGEA_FAULT` in the process's environment, a value
that names no point is refused by the settings (`bad setting ONGEA_FAULT`) instead of never firing, `serve`
and `mpesa-worker` refuse to start with it under `DARAJA_ENVIRONMENT=production` (README, Configuration) and
`ongea-pesa check --production` reports it, and a process whose environment says production never fires it
(whatever command it runs: `migrate --adopt --apply` too)."""

from __future__ import annotations

import logging
import os
import signal
from typing import Literal

log = logging.getLogger(__name__)

FAULT_ENV = "ONGEA_FAULT"

# The dangerous moments: the ledger committed / the gateway accepted a payout, a top-up's push, and a
# Daraja callback before and after it is recorded.
FaultPoint = Literal[
    "after_commit_before_send",
    "after_send_before_record",
    "topup_before_push",
    "topup_after_push",
    "callback_before_record",
    "callback_after_record",
    # `migrate --adopt --apply`: inside each step's transaction, after its work, before its commit (the
    # migrate step: after the migrations, before the step is recorded).
    "adopt_backup",
    "adopt_aside",
    "adopt_migrate",
    "adopt_copy",
]


# The variables of DARAJA_ENVIRONMENT (voice_server/settings.py): the money path reads no settings.
PRODUCTION_ENV = ("DARAJA_ENVIRONMENT", "ONGEA_DARAJA_ENVIRONMENT")


def fault_point(name: FaultPoint) -> None:
    """SIGKILL this process here when `ONGEA_FAULT` names this point (never in production); else nothing."""
    if os.environ.get(FAULT_ENV) == name and not _production():
        log.critical("fault injection: SIGKILL at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)


def _production() -> bool:
    return any(os.environ.get(variable, "").strip().lower() == "production" for variable in PRODUCTION_ENV)
