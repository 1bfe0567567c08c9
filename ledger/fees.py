"""Fees: amount times the plan's rate, rounded half-up to the cent (the SQL functions compute the same;
this is for read-backs made before a proposal exists, and for tests)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import asyncpg

from ledger.models import CENT


def fee_for(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


async def user_fee_rate(conn: asyncpg.Connection | asyncpg.Pool, user_id: object) -> Decimal:
    """The fee rate of the user's active plan now (the free plan's when there is none)."""
    rate: Decimal = await conn.fetchval("SELECT fee_rate FROM ledger_user_terms($1, now())", user_id)
    return rate
