"""The money limits, in one place: the ledger's SQL and every Python check read them from here.

The repeatable SQL files say `${max_transaction_kes}` where a limit goes; `ledger.migrate` substitutes the
values below (M-Pesa's one-transaction ceiling from `intents.limits`) before it takes a file's checksum, so
changing a limit re-runs the functions that use it on the next `ongea-pesa migrate` (as Flyway's
placeholders do). The CHECK constraints written into the numbered migrations 0005 and 0011 are history and
keep their literal 250000."""

from __future__ import annotations

from decimal import Decimal

# One payment, payout or top-up: M-Pesa's own ceiling (declared in the bottom layer, which the parser reads).
from intents.limits import MAX_TRANSACTION_KES as MAX_TRANSACTION_KES
from intents.limits import kes as kes

# Everything a user pays in one Nairobi day, in shillings (`ledger_limit_refusal`).
MAX_DAILY_KES = Decimal(500_000)


def sql_placeholders() -> dict[str, str]:
    """What each `${name}` in a repeatable SQL file stands for."""
    return {
        "max_transaction_kes": str(MAX_TRANSACTION_KES),
        "max_transaction_kes_text": kes(MAX_TRANSACTION_KES),
        "max_daily_kes": str(MAX_DAILY_KES),
        "max_daily_kes_text": kes(MAX_DAILY_KES),
    }
