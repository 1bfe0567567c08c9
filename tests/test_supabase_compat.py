"""The same migration files apply to a database that looks like Supabase's: `auth` already there (with
Supabase's own auth.users and auth.uid()), the `authenticated` role, and the `supabase_realtime`
publication, which then carries the founding tables."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from ledger.migrate import migrate

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
CREATE PUBLICATION supabase_realtime;
"""


async def test_migrations_apply_unchanged_on_a_supabase_like_database(
    empty_database: Callable[[], Awaitable[str]],
) -> None:
    url = await empty_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SUPABASE_LIKE)
        await migrate(url)
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
        # A user as Supabase's auth would create it works with the ledger's tables.
        user = await conn.fetchval(
            "INSERT INTO auth.users (id, phone, aud, role) "
            "VALUES (gen_random_uuid(), '254700000001', 'authenticated', 'authenticated') RETURNING id"
        )
        await conn.execute("INSERT INTO profiles (id, phone_number) VALUES ($1, '254700000001')", user)
    finally:
        await conn.close()
