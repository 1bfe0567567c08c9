"""Outside review: a blanket `GRANT ALL ON ALL FUNCTIONS/TABLES IN SCHEMA public TO authenticated` run after
migrating (a common Supabase habit) must not hand a signed-in user money. Sign-up's `ledger_create_profile`
(sql/0022) is SECURITY DEFINER and reads an opening balance, plan and PIN hash from a setting any role may set
(`ongea.new_user`): once granted, a person who signed up by e-mail (no profile yet) could make their own
wallet with any balance. Each attempt is rolled back."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import asyncpg
import pytest

from ledger.users import create_user
from tests.ledger.conftest import fresh_phone

MONEY = json.dumps({"opening_balance": "1000000", "plan": "business"})


async def test_a_granted_user_cannot_make_their_own_wallet_with_money(supabase_pool: asyncpg.Pool) -> None:
    async with supabase_pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO authenticated")
            await conn.execute("GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO authenticated")
            me = uuid.uuid4()
            await conn.execute("INSERT INTO auth.users (id, email) VALUES ($1, $2)", me, f"{me}@example.com")
            assert await conn.fetchval("SELECT count(*) FROM profiles WHERE id = $1", me) == 0
            await conn.execute("SET LOCAL ROLE authenticated")
            await conn.execute(
                "SELECT set_config('request.jwt.claims', $1, true)",
                json.dumps({"sub": str(me), "role": "authenticated"}),
            )
            await conn.execute("SELECT set_config('ongea.new_user', $1, true)", MONEY)
            phone = "2547" + str(uuid.uuid4().int)[:8]
            refused = False
            try:
                async with conn.transaction():  # a savepoint: the refusal must not end the outer test
                    await conn.execute("SELECT public.ledger_create_profile($1, $2)", me, phone)
            except asyncpg.InsufficientPrivilegeError:
                refused = True
            await conn.execute("RESET ROLE")
            wallet = await conn.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", me)
            assert refused and wallet is None, f"a granted user made a wallet of {wallet}"
        finally:
            await tr.rollback()


async def _signed_in_after_grant_all(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    """As PostgREST runs a signed-in user's request, in this transaction, after someone ran a blanket
    `GRANT ALL ON ALL TABLES/FUNCTIONS IN SCHEMA public TO authenticated`."""
    await conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO authenticated")
    await conn.execute("GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO authenticated")
    await conn.execute("SET LOCAL ROLE authenticated")
    claims = json.dumps({"sub": str(user_id), "role": "authenticated"})
    await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)


# A signed-in user's own money, written straight to the table the ledger keeps it in.
MONEY_WRITES = [
    "UPDATE profiles SET wallet_balance = 1000000 WHERE id = $1",
    "UPDATE profiles SET held_balance = -1000000 WHERE id = $1",
    "UPDATE profiles SET wallet_balance = wallet_balance + 1, held_balance = 0 WHERE id = $1",
]


@pytest.mark.parametrize("statement", MONEY_WRITES)
async def test_after_grant_all_a_user_cannot_write_their_own_balance(
    supabase_pool: asyncpg.Pool, statement: str
) -> None:
    """The issue's 'grants that a later mistake cannot reopen': money columns change only through the
    ledger's functions, whatever a later GRANT gives the user role."""
    async with supabase_pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            made = await create_user(conn, fresh_phone(), balance=Decimal("10"))
            before = await conn.fetchrow(_MONEY, made.user_id)
            await _signed_in_after_grant_all(conn, made.user_id)
            try:
                async with conn.transaction():
                    await conn.execute(statement, made.user_id)
            except asyncpg.InsufficientPrivilegeError:
                pass
            await conn.execute("RESET ROLE")
            assert await conn.fetchrow(_MONEY, made.user_id) == before
        finally:
            await tr.rollback()


_MONEY = "SELECT wallet_balance, held_balance FROM profiles WHERE id = $1"


# Who the user is and where their money goes: the number they sign in with, and the M-Pesa number their
# withdrawals are paid to (`ledger/payouts.py`: mpesa_number, else phone_number). The app has no way for a
# user to change either (`PATCH /v1/me` takes the preferences only); a user who could would send their next
# withdrawal elsewhere, or change the number they sign in with, without the ledger knowing.
NUMBER_WRITES = [
    "UPDATE profiles SET phone_number = $2 WHERE id = $1",
    "UPDATE profiles SET mpesa_number = $2 WHERE id = $1",
    "UPDATE profiles SET mpesa_number = NULL, phone_number = $2 WHERE id = $1",
]


@pytest.mark.parametrize("statement", NUMBER_WRITES)
async def test_after_grant_all_a_user_cannot_change_their_numbers(
    supabase_pool: asyncpg.Pool, statement: str
) -> None:
    """0020's profile guard keeps every column but the preferences: the phone numbers too, whatever a later
    GRANT gives the user role. The attempt is refused (not silently ignored) and the row is as it was."""
    numbers = "SELECT phone_number, mpesa_number FROM profiles WHERE id = $1"
    async with supabase_pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            made = await create_user(conn, fresh_phone(), mpesa_number=fresh_phone())
            before = await conn.fetchrow(numbers, made.user_id)
            await _signed_in_after_grant_all(conn, made.user_id)
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="only the preferences"):
                async with conn.transaction():
                    await conn.execute(statement, made.user_id, fresh_phone())
            await conn.execute("RESET ROLE")
            assert await conn.fetchrow(numbers, made.user_id) == before
        finally:
            await tr.rollback()
