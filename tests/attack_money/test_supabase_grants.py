"""Outside attack as PostgREST would run it on Supabase: a signed-in user (role `authenticated`, their own JWT
claims) or an anonymous caller (`anon`) on a database that starts from Supabase's default grants, trying the
money path's functions and tables directly. None of it may work, and the user still sees only their own
rows. (No hole found here: these pin it down.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import asyncpg
import pytest

from ledger.db import create_pool
from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.service import Ledger
from tests.test_supabase_compat import _supabase_database

ATTACKS = [
    "UPDATE profiles SET wallet_balance = wallet_balance + 100000 WHERE id = $1",
    "UPDATE profiles SET held_balance = 0 WHERE id = $1",
    "INSERT INTO balance_history (user_id, previous_balance, new_balance, change_amount, reason)"
    " VALUES ($1, 0, 100000, 100000, 'topup')",
    "INSERT INTO transactions (user_id, type, amount, status) VALUES ($1, 'send_phone', 10, 'completed')",
    "INSERT INTO mpesa_transactions (user_id, amount, phone_number, status)"
    " VALUES ($1, 5000, '254700000001', 'completed')",
    "UPDATE mpesa_transactions SET status = 'completed' WHERE user_id = $1",
    "SELECT update_user_balance($1, NULL, 100000, 'topup')",
    "SELECT ledger_credit_stk(NULL, 'ws_CO_x', true, 100, 'R1', NULL, true)",
    "SELECT ledger_credit_c2b('T1', 'OPXXXXXX', 100, '600000', '', '', '', '', 'pull')",
    "SELECT ledger_c2b_acceptable('OPXXXXXX')",
    "SELECT ledger_expire_deposits(now() + interval '2 days')",
    "SELECT ledger_settle(gen_random_uuid(), false, NULL, 'x')",
    "SELECT * FROM daraja_tokens",
    "SELECT * FROM mpesa_stk_alternates",
    "SELECT * FROM mpesa_callbacks",
    "SELECT * FROM c2b_deposits",
    "SELECT account_reference FROM c2b_expected_deposits",
    "UPDATE c2b_expected_deposits SET status = 'awaiting'",
    "SELECT * FROM payout_outbox",
    "SELECT * FROM ledger_usage",
    "DELETE FROM ledger_usage",
    "SELECT pin_hash FROM profiles WHERE id = $1",
]


async def _user(conn: asyncpg.Connection, phone: str) -> uuid.UUID:
    user: uuid.UUID = await conn.fetchval(
        "INSERT INTO auth.users (id, phone) VALUES (gen_random_uuid(), $1) RETURNING id", phone
    )  # the sign-up trigger (sql/0022) makes the profile and its opening balance
    return user


@pytest.mark.parametrize("role", ["authenticated", "anon"])
async def test_a_user_cannot_reach_the_money_path_through_supabase(
    empty_database: Callable[[], Awaitable[str]], role: str
) -> None:
    url, conn = await _supabase_database(empty_database)
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        me = await _user(conn, "254700000021")
        other = await _user(conn, "254700000022")
        # The other user awaits a bank deposit (a reference worth guessing) and has a payout.
        ledger = Ledger(pool)
        p = await ledger.propose(
            other, ProposalRequest.build(type="bank_to_mpesa", amount="900", bank_code="68")
        )
        ref = (await ledger.confirm(p.id, other, p.version, voice_verified=True)).account_reference
        assert ref is not None
        for statement in ATTACKS:
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute(f"SET LOCAL ROLE {role}")
                await conn.execute(
                    "SELECT set_config('request.jwt.claims', $1, true)",
                    json.dumps({"sub": str(me), "role": role}),
                )
                args = [me] if "$1" in statement else []
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement, *args)
            finally:
                await tx.rollback()
        # What a signed-in user may read is only their own.
        if role == "authenticated":
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE authenticated")
                await conn.execute(
                    "SELECT set_config('request.jwt.claims', $1, true)", json.dumps({"sub": str(me)})
                )
                seen = await conn.fetch("SELECT user_id, confirm_result FROM transactions")
                assert all(r["user_id"] == me for r in seen)
                history = await conn.fetch("SELECT user_id FROM balance_history")
                assert {r["user_id"] for r in history} == {me}
        assert await conn.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", me) == Decimal("0.00")
        assert await check_invariants(pool, [me, other]) == []
    finally:
        await pool.close()
        await conn.close()
