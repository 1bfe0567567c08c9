"""`tools/sql_split.py`, as the lead runs it at a merge: a numbered migration written the old way comes out
as a schema-only migration plus edited repeatable files, and they build the database the old file built."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from ledger.migrate import migrate, migrations_dir
from tests.test_repeatable_migrations import _DEFINES, _catalog

TOOL = Path(__file__).resolve().parents[1] / "tools" / "sql_split.py"

OLD_STYLE = """-- Business accounts (written the old way).
ALTER TABLE public.profiles ADD COLUMN business BOOLEAN NOT NULL DEFAULT false;

-- Whether a user is a business; a new function.
CREATE FUNCTION public.is_business(p_user_id UUID, p_now TIMESTAMPTZ DEFAULT NULL) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT business FROM profiles WHERE id = p_user_id;
$$;
REVOKE ALL ON FUNCTION public.is_business(UUID, TIMESTAMPTZ) FROM PUBLIC;

-- A function redefined; its body has a ; inside a string.
CREATE OR REPLACE FUNCTION public.ledger_limit_message(p_code TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE p_code
        WHEN 'monthly_limit' THEN 'your plan''s monthly number of transactions is used up; business: more'
        WHEN 'daily_limit' THEN 'at most KES 500,000 a day'
        ELSE p_code END
$$;

-- A new signature: the old function is dropped (a schema change) and the new one created.
DROP FUNCTION public.ledger_c2b_acceptable(TEXT);
CREATE FUNCTION public.ledger_c2b_acceptable(p_bill_ref TEXT, p_strict BOOLEAN DEFAULT false) RETURNS BOOLEAN
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM c2b_expected_deposits
                   WHERE account_reference = ledger_normal_reference(p_bill_ref) AND status = 'awaiting')
$$;
REVOKE ALL ON FUNCTION public.ledger_c2b_acceptable(TEXT, BOOLEAN) FROM PUBLIC;

DROP POLICY IF EXISTS "Users can view own profile" ON public.profiles;
CREATE POLICY "Users can view own profile" ON public.profiles
    FOR SELECT USING (auth.uid() = id AND NOT business);
DROP POLICY "Users can insert own transactions" ON public.transactions;

DROP TRIGGER update_profiles_updated_at ON public.profiles;
CREATE TRIGGER update_profiles_updated_at
    BEFORE UPDATE OF business ON public.profiles
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();
"""


async def test_an_old_style_migration_splits_into_the_same_database(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """Before: today's tree migrated, then the old-style file run on it as it was written (against the
    database as it is). After: that file split into the numbered file and the repeatable files it edited,
    then migrated. Same functions, views, triggers, policies."""
    catalogs = []
    for split in (False, True):
        folder = tmp_path / f"sql_{split}"
        shutil.copytree(migrations_dir(), folder)
        # The next free number: the old-style file comes after every numbered file there is.
        number = max(int(p.name[:4]) for p in migrations_dir().glob("[0-9]*.sql")) + 1
        migration = folder / f"{number:04d}_business.sql"
        if split:
            migration.write_text(OLD_STYLE)
            run = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, str(TOOL), str(migration)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert run.returncode == 0, run.stderr
            assert "created" in run.stdout and "functions/is_business.sql" in run.stdout
            left = migration.read_text()
            assert [h.group(0) for h in _DEFINES.finditer(left)] == []
            assert "DROP TRIGGER" not in left  # CREATE OR REPLACE TRIGGER in its file does it
            assert "ALTER TABLE public.profiles ADD COLUMN business" in left
            assert 'DROP POLICY "Users can insert own transactions"' in left  # a removal stays a migration
            assert (
                "Users can insert own transactions"
                not in (folder / "policies" / "transactions.sql").read_text()
            )
            assert "DROP FUNCTION public.ledger_c2b_acceptable(TEXT);" in left
            acceptable = (folder / "functions" / "ledger_c2b_acceptable.sql").read_text()
            assert "ledger_c2b_acceptable(text)" not in acceptable and "(text, boolean)" in acceptable
            assert "business: more" in (folder / "functions" / "ledger_limit_message.sql").read_text()
        url = await empty_database()
        await migrate(url, folder)
        conn = await asyncpg.connect(url)
        try:
            if not split:
                await conn.execute(OLD_STYLE)
            catalogs.append(await _catalog(conn))
            said = await conn.fetchval("SELECT ledger_limit_message('monthly_limit')")
            assert said.endswith("business: more")
        finally:
            await conn.close()
    before, after = catalogs
    for part in ("functions", "relations", "triggers", "policies"):
        assert set(before[part]) == set(after[part]), part
        differ = [k for k in before[part] if before[part][k] != after[part][k]]
        assert differ == [], part
    assert any(sig.startswith("is_business(") for sig in after["functions"])
