"""A later mistake cannot reopen the money: after migrating a Supabase-like database, someone runs the common
`GRANT ALL ON ALL TABLES / SEQUENCES / FUNCTIONS IN SCHEMA public TO authenticated, anon`. A signed-in user
(role `authenticated`, their own JWT claims, as PostgREST runs it) then tries every write an attacker would:
all are refused by the database itself (sql/0020's triggers and the plans' row level security), while the
app still works through a real `ongea-pesa serve` on that database (the app API, a payment and a top-up)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from ledger.users import create_user
from tests.server_conv.conftest import JWT_SECRET, start_server
from tests.server_conv.wsclient import mint, propose_by_tool, tool
from tests.test_supabase_compat import _supabase_database, signed_in
from voice_server.auth import mint_user_token

GRANT_ALL = """
GRANT ALL ON ALL TABLES IN SCHEMA public TO authenticated, anon;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO authenticated, anon;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO authenticated, anon;
"""

# Every write an attacker holding a user token would try, on their own rows and everyone's.
ATTACKS = [
    "UPDATE profiles SET wallet_balance = wallet_balance + 100000 WHERE id = $1",
    "UPDATE profiles SET held_balance = held_balance + 500 WHERE id = $1",
    "UPDATE profiles SET pin_hash = 'forged' WHERE id = $1",
    "UPDATE profiles SET pin_hash = NULL WHERE id = $1",
    "UPDATE profiles SET pin_failed_attempts = 0, pin_locked_until = NULL WHERE id = $1",
    "UPDATE profiles SET mpesa_number = '254700000999' WHERE id = $1",
    "INSERT INTO profiles (id, phone_number, wallet_balance) VALUES (gen_random_uuid(), '254700000998', 1e6)",
    "DELETE FROM profiles WHERE id = $1",
    "INSERT INTO balance_history (user_id, previous_balance, new_balance, change_amount, reason)"
    " VALUES ($1, 0, 100000, 100000, 'topup')",
    "UPDATE balance_history SET change_amount = 100000 WHERE user_id = $1",
    "DELETE FROM balance_history WHERE user_id = $1",
    "INSERT INTO transactions (user_id, type, amount, status) VALUES ($1, 'send_phone', 10, 'completed')",
    "UPDATE transactions SET status = 'failed' WHERE user_id = $1",
    "UPDATE transactions SET amount = 1 WHERE user_id = $1",
    "DELETE FROM transactions WHERE user_id = $1",
    "INSERT INTO mpesa_transactions (user_id, amount, phone_number, status)"
    " VALUES ($1, 5000, '254700000001', 'completed')",
    "UPDATE mpesa_transactions SET status = 'completed' WHERE user_id = $1",
    "UPDATE subscription_plans SET transaction_fee_percentage = 0, monthly_fee = 0",
    "INSERT INTO subscription_plans (id, name, monthly_fee, transaction_fee_percentage)"
    " VALUES ('vip', 'VIP', 0, 0)",
    "DELETE FROM subscription_plans WHERE id = 'pro'",
    "INSERT INTO subscriptions (user_id, plan_type, monthly_fee, transaction_fee_percentage,"
    " current_period_start, current_period_end)"
    " VALUES ($1, 'business', 0, 0, now(), now() + interval '1 year')",
    "UPDATE subscriptions SET plan_type = 'business', transaction_fee_percentage = 0 WHERE user_id = $1",
    "DELETE FROM subscriptions WHERE user_id = $1",
    "UPDATE voice_sessions SET dialogue_state = '{}'::jsonb WHERE user_id = $1",
    "INSERT INTO payout_outbox (transaction_id) VALUES (gen_random_uuid())",
    "DELETE FROM stripe_events",
    "TRUNCATE balance_history CASCADE",
    "TRUNCATE transactions CASCADE",
    "TRUNCATE profiles CASCADE",
    "TRUNCATE subscription_plans CASCADE",
    "TRUNCATE contacts",
    "SELECT update_user_balance($1, NULL, 1000, 'gift')",
    "SELECT * FROM ledger_pin_attempt($1, true)",
]


async def _attempt(conn: asyncpg.Connection, role: str, user_id: uuid.UUID, statement: str) -> str:
    try:
        async with signed_in(conn, role, user_id):
            status = await conn.execute(statement, *([user_id] if "$1" in statement else []))
            return f"done: {status}"
    except asyncpg.InsufficientPrivilegeError:
        return "refused"
    except asyncpg.PostgresError as exc:
        return f"error: {type(exc).__name__}: {exc}"


@pytest.fixture
async def granted(empty_database: Callable[[], Awaitable[str]]) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    url, conn = await _supabase_database(empty_database)
    await conn.execute(GRANT_ALL)
    await conn.close()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    assert pool is not None
    yield url, pool
    await pool.close()


@pytest.mark.parametrize("role", ["authenticated", "anon"])
async def test_after_grant_all_every_money_write_is_still_refused(
    granted: tuple[str, asyncpg.Pool], role: str
) -> None:
    _, pool = granted
    user = (await create_user(pool, "254700000031", balance=Decimal("1000"), pin="7392")).user_id
    # Three wrong PINs already: what an attacker holding the token would most like to undo.
    await pool.execute("UPDATE profiles SET pin_failed_attempts = 3 WHERE id = $1", user)
    async with pool.acquire() as conn:
        outcomes = {s: await _attempt(conn, role, user, s) for s in ATTACKS}
    holes = {s: o for s, o in outcomes.items() if o != "refused"}
    assert not holes, json.dumps(holes, indent=1)
    assert await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user) == Decimal(
        "1000.00"
    )


async def test_after_grant_all_a_user_still_changes_preferences_and_contacts(
    granted: tuple[str, asyncpg.Pool],
) -> None:
    _, pool = granted
    user = (await create_user(pool, "254700000032", balance=Decimal("1000"))).user_id
    async with pool.acquire() as conn:
        for statement in (
            "UPDATE profiles SET biometric_enabled = true, mpesa_auto_topup = true WHERE id = $1",
            "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, 'Mama', '254733444555')",
            "SELECT * FROM subscription_plans",
        ):
            assert (await _attempt(conn, "authenticated", user, statement)).startswith("done"), statement


async def test_after_grant_all_the_app_still_works_through_the_real_server(
    granted: tuple[str, asyncpg.Pool], tmp_path: Path
) -> None:
    url, pool = granted
    created = await create_user(pool, "254700000033", balance=Decimal("5000"), plan="basic")
    await pool.execute(
        "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, 'Mama', '254733444555')",
        created.user_id,
    )
    token = mint_user_token(JWT_SECRET, created.user_id, ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    server = await asyncio.to_thread(start_server, url, tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/v1/me", headers=headers) as r:
                assert r.status == 200 and (await r.json())["wallet_balance"] == "5000.00"
            async with http.patch(
                f"{server.url}/v1/me", headers=headers, json={"biometric_enabled": True}
            ) as r:
                assert r.status == 200, await r.text()
            async with http.post(
                f"{server.url}/v1/contacts",
                headers=headers,
                json={"name": "John Kamau", "phone": "0722111222"},
            ) as r:
                assert r.status == 201, await r.text()
            async with http.post(f"{server.url}/v1/topups", headers=headers, json={"amount": 500}) as r:
                assert r.status == 201, await r.text()
        session = await mint(server.url, token)
        proposed = await propose_by_tool(server.url, session, "300", "Mama")
        status, done = await tool(
            server.url,
            session["session_token"],
            "confirm_transaction",
            {"session_id": session["session_id"], "proposal_id": proposed["proposal_id"], "version": 1},
        )
        assert status == 200 and done["outcome"] == "committed", done
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = await pool.fetch(
                "SELECT status FROM mpesa_transactions WHERE user_id = $1 UNION ALL "
                "SELECT status FROM transactions WHERE user_id = $1",
                created.user_id,
            )
            if {r["status"] for r in statuses} == {"completed"}:
                break
            await asyncio.sleep(0.3)
        balance = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", created.user_id)
        fee = await pool.fetchval("SELECT fee FROM transactions WHERE user_id = $1", created.user_id)
        assert balance == Decimal("5000.00") + 500 - 300 - fee, statuses
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.output()[-3000:]
    assert "Traceback" not in server.output()
