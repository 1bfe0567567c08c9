"""The same migration files apply to a database that looks like Supabase's, and hold there.

The stand-in has what Supabase has before our first migration: `auth` (its own auth.users and auth.uid()),
the `anon`, `authenticated` and `service_role` roles, the `supabase_realtime` publication, and Supabase's
default grants: ALL on every table, sequence and function in `public` to anon, authenticated and
service_role, by default privileges too, so every object our migrations create starts out granted to them.
After the migrations nothing in `public` may be reachable by anon, and a signed-in user may only read their
own rows and change their own preferences (issue 7, finding 4)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest

from ledger.exposure import exposure
from ledger.migrate import migrate

ROLES = """
DO $$
DECLARE
    r TEXT;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another test database of this cluster created it first
            END;
        END IF;
    END LOOP;
END
$$;
"""

SUPABASE_LIKE = """
CREATE SCHEMA auth;
CREATE TABLE auth.users (
    instance_id UUID,
    id UUID PRIMARY KEY,
    aud VARCHAR(255),
    role VARCHAR(255),
    email VARCHAR(255) UNIQUE,
    encrypted_password VARCHAR(255),
    phone TEXT UNIQUE DEFAULT NULL,
    raw_app_meta_data JSONB,
    raw_user_meta_data JSONB,
    created_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ
);
CREATE FUNCTION auth.uid() RETURNS UUID LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
COMMENT ON FUNCTION auth.uid() IS 'supabase original';
COMMENT ON TABLE auth.users IS 'supabase original';
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role;
CREATE PUBLICATION supabase_realtime;

-- Supabase's grants on public (supabase/postgres: migrations/db/init-scripts, "public" schema grants).
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


async def _supabase_database(empty_database: Callable[[], Awaitable[str]]) -> tuple[str, asyncpg.Connection]:
    url = await empty_database()
    conn = await asyncpg.connect(url)
    await conn.execute(ROLES)
    await conn.execute(SUPABASE_LIKE)
    await migrate(url)
    return url, conn


@asynccontextmanager
async def signed_in(conn: asyncpg.Connection, role: str, user: uuid.UUID) -> AsyncIterator[None]:
    """As PostgREST runs a request of `role` with `user`'s claims, in a transaction rolled back at the end."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(f"SET LOCAL ROLE {role}")
        claims = json.dumps({"sub": str(user), "role": role})
        await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
        yield
    finally:
        await tx.rollback()


async def _exposure(conn: asyncpg.Connection) -> list[str]:
    """Every privilege anon, authenticated or PUBLIC holds in public beyond the app's explicit grants."""
    return [str(g) for g in await exposure(conn)]


async def test_migrations_apply_unchanged_on_a_supabase_like_database(
    empty_database: Callable[[], Awaitable[str]],
) -> None:
    _, conn = await _supabase_database(empty_database)
    try:
        # Supabase's own objects were used, not replaced.
        assert await conn.fetchval("SELECT obj_description('auth.users'::regclass)") == "supabase original"
        assert (
            await conn.fetchval("SELECT obj_description('auth.uid()'::regprocedure)") == "supabase original"
        )
        published = {
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
            )
        }
        assert {"profiles", "transactions", "balance_history", "mpesa_transactions"} <= published
        # A user as Supabase's auth would create it works with the ledger's tables (its sign-up trigger,
        # sql/0022, makes the profile).
        user = await conn.fetchval(
            "INSERT INTO auth.users (id, phone, aud, role) "
            "VALUES (gen_random_uuid(), '254700000001', 'authenticated', 'authenticated') RETURNING id"
        )
        assert await conn.fetchval("SELECT phone_number FROM profiles WHERE id = $1", user) == "254700000001"
    finally:
        await conn.close()


async def test_supabase_default_grants_are_taken_back_everywhere(
    empty_database: Callable[[], Awaitable[str]],
) -> None:
    _, conn = await _supabase_database(empty_database)
    try:
        assert await _exposure(conn) == []
        # A later migration's objects (created by the same role) are private by default.
        await conn.execute(
            """CREATE TABLE public.later_table (id BIGSERIAL PRIMARY KEY, secret TEXT);
               CREATE FUNCTION public.later_function() RETURNS INT LANGUAGE sql AS 'SELECT 1';"""
        )
        assert await _exposure(conn) == []
    finally:
        await conn.close()


async def test_plain_postgresql_exposes_nothing_either(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await _exposure(conn) == []


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        ("anon", "SELECT * FROM subscription_plans"),
        ("anon", "DELETE FROM schema_migrations"),
        ("anon", "SELECT * FROM profiles"),
        ("anon", "SELECT ledger_credit_topup('ws_CO_1', true, 100, 'R1', NULL)"),
        ("anon", "SELECT update_user_balance(gen_random_uuid(), NULL, 1000, 'gift')"),
        ("anon", "SELECT nextval('mpesa_callbacks_id_seq')"),
        (
            "authenticated",
            "UPDATE subscription_plans SET transaction_fee_percentage = 0, monthly_transaction_limit = NULL",
        ),
        ("authenticated", "DELETE FROM schema_migrations"),
        ("authenticated", "SELECT * FROM payout_outbox"),
        ("authenticated", "SELECT * FROM mpesa_callbacks"),
        ("authenticated", "SELECT * FROM c2b_deposits"),
        ("authenticated", "SELECT * FROM c2b_expected_deposits"),
        ("authenticated", "UPDATE c2b_paybill SET shortcode = '123456'"),
        (
            "authenticated",
            "INSERT INTO voice_sessions (user_id, session_id, agent_id) VALUES ($1, 'theirs', 'a')",
        ),
        ("authenticated", "SELECT ledger_cancel_session('theirs', $1, 'x')"),
        ("authenticated", "SELECT ledger_cancel_session_server('theirs', 'x')"),
        ("authenticated", "SELECT ledger_credit_c2b('T1', 'OPXXXXXX', 100, '600000', '', '', '', '')"),
        ("authenticated", "SELECT ledger_new_reference('OP', 6)"),
    ],
)
async def test_supabase_roles_cannot_touch_money_or_server_tables(
    empty_database: Callable[[], Awaitable[str]], role: str, statement: str
) -> None:
    _, conn = await _supabase_database(empty_database)
    try:
        user = await conn.fetchval(  # the sign-up trigger (sql/0022) makes its profile
            "INSERT INTO auth.users (id, phone) VALUES (gen_random_uuid(), '254700000002') RETURNING id"
        )
        async with signed_in(conn, role, user):
            args = [user] if "$1" in statement else []
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, *args)
        plans = await conn.fetch("SELECT transaction_fee_percentage FROM subscription_plans ORDER BY id")
        assert all(p["transaction_fee_percentage"] > 0 for p in plans)
    finally:
        await conn.close()


async def test_a_signed_in_user_still_reads_their_own_rows_on_supabase(
    empty_database: Callable[[], Awaitable[str]],
) -> None:
    _, conn = await _supabase_database(empty_database)
    try:
        me, other = uuid.uuid4(), uuid.uuid4()
        for n, u in enumerate((me, other)):
            # the sign-up trigger (sql/0022) makes the profile
            await conn.execute("INSERT INTO auth.users (id, phone) VALUES ($1, $2)", u, f"25470000001{n}")
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE authenticated")
            await conn.execute(
                "SELECT set_config('request.jwt.claims', $1, true)", json.dumps({"sub": str(me)})
            )
            rows = await conn.fetch("SELECT id FROM profiles")
            assert [r["id"] for r in rows] == [me]
            assert len(await conn.fetch("SELECT id FROM subscription_plans")) == 4
            assert await conn.execute("UPDATE profiles SET mpesa_auto_topup = true") == "UPDATE 1"
    finally:
        await conn.close()
