"""The migrations apply to an empty plain PostgreSQL, are a no-op the second time, and refuse edited files."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from ledger.migrate import MigrationError, load_migrations, load_repeatables, migrate, migrations_dir

FOUNDING_TABLES = {
    "profiles",
    "transactions",
    "voice_sessions",
    "balance_history",
    "mpesa_transactions",
    "payment_methods",
    "contacts",
    "subscriptions",
    "subscription_plans",
}


async def test_apply_on_empty_database_then_noop(empty_database: Callable[[], Awaitable[str]]) -> None:
    url = await empty_database()
    applied = await migrate(url)
    # The numbered files in order, then every repeatable one (`sql/README.md`).
    assert applied == [m.name for m in load_migrations()] + [r.name for r in load_repeatables()]
    assert await migrate(url) == []

    conn = await asyncpg.connect(url)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert FOUNDING_TABLES <= tables
        assert await conn.fetchval("SELECT to_regclass('auth.users') IS NOT NULL")
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(load_migrations())
        assert await conn.fetchval("SELECT count(*) FROM schema_repeatables") == len(load_repeatables())
        rls = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relnamespace = 'public'::regnamespace"
        )
        assert FOUNDING_TABLES - {"subscription_plans"} <= {r["relname"] for r in rls}
        plans = await conn.fetch("SELECT id, transaction_fee_percentage FROM subscription_plans ORDER BY id")
        assert {r["id"] for r in plans} == {"free", "basic", "pro", "business"}
        # auth.uid() reads the `sub` claim, as Supabase's does.
        row = await conn.fetchrow(
            "SELECT set_config('request.jwt.claims', $1, false), auth.uid()",
            '{"sub": "4f1c2b52-8d5e-4c3e-9a0f-1b2c3d4e5f60"}',
        )
        assert str(row["uid"]) == "4f1c2b52-8d5e-4c3e-9a0f-1b2c3d4e5f60"
    finally:
        await conn.close()


async def test_edited_migration_is_refused(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    url = await empty_database()
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    await migrate(url, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="edited"):
        await migrate(url, folder)


async def test_failed_migration_rolls_back(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    url = await empty_database()
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    (folder / "9999_broken.sql").write_text("CREATE TABLE half_done (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(url, folder)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.half_done')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = '9999'") == 0
    finally:
        await conn.close()
