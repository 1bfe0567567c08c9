"""SQL as Supabase's PostgREST runs it for a request (SET ROLE authenticated or anon, the JWT's claims in
`request.jwt.claims`), on a database migrated on top of Supabase's default grants: every table, function and
sequence our migrations create is granted to `anon` and `authenticated` unless a migration takes it back.
Each statement is rolled back whatever happens, so a hole found here cannot spoil the next test."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from ledger.users import create_user
from tests.ledger.conftest import fresh_phone


async def _attempt(db: asyncpg.Pool, role: str, user_id: uuid.UUID | None, statement: str) -> str:
    """Runs `statement` as `role` with `user_id`'s claims and rolls back: the outcome as a word."""
    claims = {"role": role} if user_id is None else {"sub": str(user_id), "role": role}
    async with db.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute(
                "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                role,
                json.dumps(claims),
            )
            args = [user_id] if "$1" in statement else []
            status = await conn.execute(statement, *args)
            return f"done: {status}"
        except asyncpg.InsufficientPrivilegeError:
            return "refused"
        except asyncpg.PostgresError as exc:
            return f"error: {type(exc).__name__}: {exc}"
        finally:
            await tr.rollback()


# What a signed-in user must not do to anyone's money or terms, their own included.
USER_REFUSED = [
    # the plan table decides every user's fees and limits
    "UPDATE subscription_plans SET transaction_fee_percentage = 0, monthly_fee = 0",
    "INSERT INTO subscription_plans (id, name, monthly_fee, transaction_fee_percentage)"
    " VALUES ('vip', 'VIP', 0, 0)",
    "DELETE FROM subscription_plans WHERE id = 'pro'",
    # the ledger's own tables, where row level security has no say over TRUNCATE
    "TRUNCATE ledger_usage",
    "TRUNCATE payout_outbox CASCADE",
    "TRUNCATE mpesa_callbacks",
    "TRUNCATE mpesa_status_queries",
    "TRUNCATE stripe_events",
    # sequences: balance_history.seq orders the audit chain and the history pages
    "SELECT setval(pg_get_serial_sequence('public.balance_history', 'seq'), 1)",
    # own money and lockout columns, ledger functions
    "UPDATE profiles SET wallet_balance = 1000000 WHERE id = $1",
    "UPDATE profiles SET pin_failed_attempts = 0, pin_locked_until = NULL WHERE id = $1",
    "INSERT INTO transactions (user_id, type, amount, status) VALUES ($1, 'send_phone', 10, 'completed')",
    "SELECT update_user_balance($1, NULL, 1000, 'gift')",
    "SELECT * FROM ledger_pin_attempt($1, true)",
    "INSERT INTO subscriptions (user_id, plan_type, monthly_fee, transaction_fee_percentage,"
    " current_period_start, current_period_end)"
    " VALUES ($1, 'business', 0, 0, now(), now() + interval '1 year')",
]


@pytest.mark.parametrize("statement", USER_REFUSED)
async def test_a_supabase_user_cannot(supabase_pool: asyncpg.Pool, statement: str) -> None:
    user = (await create_user(supabase_pool, fresh_phone(), balance="100")).user_id
    assert await _attempt(supabase_pool, "authenticated", user, statement) == "refused"


# What a request with only the app's public anon key (no user) must not do.
ANON_REFUSED = [
    "UPDATE subscription_plans SET transaction_fee_percentage = 0, monthly_fee = 0",
    "TRUNCATE profiles CASCADE",
    "TRUNCATE transactions CASCADE",
    "SELECT * FROM ledger_expire_due()",
    "SELECT * FROM ledger_pin_attempt(gen_random_uuid(), true)",
    "SELECT setval(pg_get_serial_sequence('public.balance_history', 'seq'), 1)",
]


@pytest.mark.parametrize("statement", ANON_REFUSED)
async def test_the_anon_key_cannot(supabase_pool: asyncpg.Pool, statement: str) -> None:
    assert await _attempt(supabase_pool, "anon", None, statement) == "refused"


async def test_a_supabase_user_still_reads_plans_and_own_rows(supabase_pool: asyncpg.Pool) -> None:
    user = (await create_user(supabase_pool, fresh_phone(), balance="100")).user_id
    assert await _attempt(supabase_pool, "authenticated", user, "SELECT * FROM subscription_plans") == (
        "done: SELECT 4"
    )
    assert await _attempt(supabase_pool, "authenticated", user, "SELECT wallet_balance FROM profiles") == (
        "done: SELECT 1"
    )
