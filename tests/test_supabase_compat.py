"""The same migration files apply to a database that looks like Supabase's, and hold there.

The stand-in has what Supabase has before our first migration: `auth` (its own auth.users and auth.uid()),
the `anon`, `authenticated` and `service_role` roles, the `supabase_realtime` publication, and Supabase's
default grants: ALL on every table, sequence and function in `public` to anon, authenticated and
service_role, by default privileges too, so every object our migrations create starts out granted to them.
After the migrations nothing in `public` may be reachable by anon, and a signed-in user may only read their
own rows and change their own preferences (issue 7, finding 4)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

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
        tx = conn.transaction()
        await tx.start()
        try:
            claims = json.dumps({"sub": str(user), "role": role})
            await conn.execute(f"SET LOCAL ROLE {role}")
            await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
            args = [user] if "$1" in statement else []
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, *args)
        finally:
            await tx.rollback()
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


BLANKET_GRANT = """
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO anon, authenticated;
"""


async def _as_user(conn: asyncpg.Connection, user: uuid.UUID, statement: str) -> object:
    """`statement` as PostgREST runs a signed-in user's request, rolled back."""
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute("SET LOCAL ROLE authenticated")
        claims = json.dumps({"sub": str(user), "role": "authenticated"})
        await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
        return await conn.fetchval(statement)
    finally:
        await tx.rollback()


async def test_check_names_a_blanket_grant_and_its_statements_take_it_back(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """A blanket `GRANT ALL ... TO anon, authenticated` after the migrations (a common instruction in Supabase
    guides) gives a signed-in user their PIN hash, which four digits make a guess of seconds offline.
    `ongea-pesa check` says so, with the statements that take exactly that back; the user's own reads and
    preferences work as before."""
    url, conn = await _supabase_database(empty_database)
    try:
        user = await conn.fetchval(
            "INSERT INTO auth.users (id, phone) VALUES (gen_random_uuid(), '254700000003') RETURNING id"
        )
        await conn.execute("UPDATE profiles SET pin_hash = 'argon2-hash-of-a-pin' WHERE id = $1", user)
        # A table whose name is a statement: the printed statements must name it, never run it.
        await conn.execute('CREATE TABLE public."x; DROP TABLE profiles; --" (id INT)')
        await conn.execute(BLANKET_GRANT)
        found = [str(g) for g in await exposure(conn)]
        assert "authenticated SELECT on table public.profiles" in found
        assert any(g.startswith("authenticated EXECUTE on public.ledger_confirm(") for g in found), found
        assert await _as_user(conn, user, "SELECT pin_hash FROM profiles") == "argon2-hash-of-a-pin"

        env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
        env |= {"DATABASE_URL": url, "ONGEA_DATA_DIR": str(tmp_path / "data"), "ONGEA_LOG_LEVEL": "WARNING"}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "voice_server.cli", "check"],
            env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        problem, *statements = done.stderr.strip().splitlines()
        assert f"hold {len(found)} grant(s) the migrations took away" in problem, problem
        assert all(s.startswith(("REVOKE ", "GRANT ")) and s.endswith(";") for s in statements), statements
        assert "ongea-pesa check: 1 problem(s)" in done.stdout

        await conn.execute("\n".join(statements))
        assert await exposure(conn) == []
        assert await conn.fetchval("SELECT to_regclass('public.profiles') IS NOT NULL")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as_user(conn, user, "SELECT pin_hash FROM profiles")
        assert await _as_user(conn, user, "SELECT pin_set FROM profiles") is True
        assert (
            await _as_user(conn, user, "UPDATE profiles SET biometric_enabled = true RETURNING true") is True
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _as_user(conn, user, "UPDATE profiles SET wallet_balance = 1000000 RETURNING true")
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "voice_server.cli", "check"],
            env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "ok: database grants (anon, authenticated and PUBLIC hold only the app's)" in done.stdout
    finally:
        await conn.close()
