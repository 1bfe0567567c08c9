"""The Supabase-style user path (role `authenticated`, a user's JWT claims) can read its own rows but can
never move money, write the ledger's tables, read a PIN hash, or call the ledger's functions."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg
import pytest

from tests.ledger.conftest import MakeUser


@asynccontextmanager
async def acting_as(pool: asyncpg.Pool, user_id: uuid.UUID) -> AsyncIterator[asyncpg.Connection]:
    """What PostgREST does for a request with this user's token: role and claims for one transaction,
    which is rolled back afterwards (a refused statement aborts it anyway)."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            claims = json.dumps({"sub": str(user_id), "role": "authenticated"})
            await conn.execute("SELECT set_config('role', 'authenticated', true)")
            await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
            yield conn
        finally:
            await tx.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE profiles SET wallet_balance = 1000000",
        "UPDATE profiles SET held_balance = 0",
        "UPDATE profiles SET mpesa_number = '254700000000'",
        "SELECT pin_hash FROM profiles",
        "INSERT INTO transactions (user_id, type, amount, status) VALUES ($1, 'send_phone', 5, 'completed')",
        "UPDATE transactions SET status = 'completed'",
        "INSERT INTO balance_history (user_id, previous_balance, new_balance, change_amount, reason)"
        " VALUES ($1, 0, 100, 100, 'gift')",
        "UPDATE mpesa_transactions SET status = 'completed'",
        "UPDATE subscriptions SET transaction_fee_percentage = 0",
        "SELECT update_user_balance($1, NULL, 1000, 'gift')",
        "SELECT ledger_credit_topup('ws_CO_1', true, 100, 'R1', NULL)",
        "SELECT ledger_settle(gen_random_uuid(), false, NULL, 'x')",
        "SELECT ledger_confirm(gen_random_uuid(), $1, 1, true)",
    ],
)
async def test_user_role_cannot_touch_money(pool: asyncpg.Pool, make_user: MakeUser, statement: str) -> None:
    user = await make_user("500.00", pin="4321")
    async with acting_as(pool, user) as conn:
        args = [user] if "$1" in statement else []
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement, *args)
    row = await pool.fetchrow("SELECT wallet_balance, held_balance FROM profiles WHERE id = $1", user)
    assert (row["wallet_balance"], row["held_balance"]) == (Decimal("500.00"), Decimal("0.00"))


async def test_user_role_reads_own_profile_and_sets_own_preferences(
    pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    me = await make_user("500.00", pin="4321")
    other = await make_user("700.00")
    async with acting_as(pool, me) as conn:
        rows = await conn.fetch("SELECT id, wallet_balance, pin_set FROM profiles")
        assert [(r["id"], r["wallet_balance"], r["pin_set"]) for r in rows] == [(me, Decimal("500.00"), True)]
        changed = await conn.execute("UPDATE profiles SET mpesa_auto_topup = true")
        assert changed == "UPDATE 1"  # only one's own row: the founding policy decides
        assert await conn.fetchval("SELECT mpesa_auto_topup FROM profiles WHERE id = $1", other) is None


@pytest.mark.parametrize(
    "change",
    ["mpesa_auto_topup_amount = 99.50", "mpesa_auto_topup_amount = 0", "mpesa_auto_topup_threshold = -1"],
)
async def test_user_cannot_set_an_auto_topup_that_could_never_be_paid(
    pool: asyncpg.Pool, make_user: MakeUser, change: str
) -> None:
    me = await make_user("500.00")
    async with acting_as(pool, me) as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(f"UPDATE profiles SET {change}")
