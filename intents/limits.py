"""M-Pesa's ceiling for one transaction: a fact about M-Pesa, so it lives in the bottom layer, which the
parser reads and `ledger.limits` (the one place the ledger's SQL and every other Python check read the money
limits from) takes it from. Layers point downward: intents imports nothing of the ledger."""

from __future__ import annotations

from decimal import Decimal

# One payment, payout or top-up: M-Pesa's own ceiling for a single transaction, in shillings.
MAX_TRANSACTION_KES = Decimal(250_000)


def kes(amount: Decimal) -> str:
    """`250,000`: a limit as a person reads it."""
    return f"{amount:,.0f}"
