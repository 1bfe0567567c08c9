"""Repeatable migrations (`sql/functions/`, `sql/views/`, `sql/policies/`; `sql/dropped/` for what is
gone): the move out of the numbered files is exact but for what `dropped/` drops, each file re-runs when it
changes and only then, and no numbered file after the cut defines a function, view, trigger or policy again
(`sql/README.md`)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ledger.limits import MAX_DAILY_KES, MAX_TRANSACTION_KES, kes, sql_placeholders
from ledger.migrate import (
    MigrationError,
    load_migrations,
    load_repeatables,
    migrate,
    migrations_dir,
    pending_migrations,
)
from tests.test_supabase_compat import ROLES, SUPABASE_LIKE

# Numbered files up to this one may hold definitions (history); later ones may not.
LAST_WITH_DEFINITIONS = "0027"
# What was deliberately changed in a repeatable file since the move (which was exact): these, and only these,
# differ from what the numbered files alone leave. Each by its name (a function's; a trigger's or policy's as
# "table.name"; a view's), with the reason.
CHANGED_SINCE = {
    "ledger_confirm": "issue 19: a unique violation other than the reference's is raised, not retried",
}
_DEFINES = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?(FUNCTION|VIEW|TRIGGER|POLICY)\b", re.I | re.M
)


def _changed_since_the_cut() -> tuple[set[str], set[str]]:
    """The functions and the policies' tables whose files name a numbered file after the cut as their history
    (a later schema they need, e.g. 0028's business accounts): the numbered files alone never left them as
    they are now, so the proof of the move leaves them out (their own tests cover them)."""
    later: dict[str, set[str]] = {"functions": set(), "policies": set()}
    for folder, names in later.items():
        for path in (migrations_dir() / folder).glob("*.sql"):
            numbers = re.findall(r"\b(\d{4})_\w+\.sql", path.read_text())
            if any(n > LAST_WITH_DEFINITIONS for n in numbers):
                names.add(path.stem)
    return later["functions"], later["policies"]


def _triggers_of(functions: set[str]) -> set[str]:
    """The names of the triggers created in these functions' files."""
    names: set[str] = set()
    for name in functions:
        text = (migrations_dir() / "functions" / f"{name}.sql").read_text()
        names |= set(re.findall(r"CREATE OR REPLACE TRIGGER (\w+)", text))
    return names


async def _catalog(conn: asyncpg.Connection) -> dict[str, Any]:
    """What the repeatable files define, as PostgreSQL holds it: functions, views, triggers, policies and the
    privileges on every object of `public` (the migrator's own bookkeeping left out)."""
    functions = await conn.fetch(
        """SELECT p.oid::regprocedure::text AS sig, pg_get_functiondef(p.oid) AS def,
                  p.proowner::regrole::text AS owner,
                  ARRAY(SELECT a::text FROM unnest(coalesce(p.proacl, '{}')) a ORDER BY 1) AS acl
           FROM pg_proc p
           WHERE p.pronamespace IN ('public'::regnamespace, 'auth'::regnamespace)
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e')"""
    )
    relations = await conn.fetch(
        """SELECT c.relname, c.relkind, c.reloptions::text AS options,
                  CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END AS def,
                  ARRAY(SELECT a::text FROM unnest(coalesce(c.relacl, '{}')) a ORDER BY 1) AS acl
           FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
             AND c.relname NOT IN ('schema_repeatables')"""
    )
    triggers = await conn.fetch(
        """SELECT t.tgrelid::regclass::text AS tbl, t.tgname, pg_get_triggerdef(t.oid) AS def, t.tgenabled
           FROM pg_trigger t WHERE NOT t.tgisinternal"""
    )
    policies = await conn.fetch("SELECT * FROM pg_policies")
    return {
        "functions": {r["sig"]: (r["def"], r["owner"], r["acl"]) for r in functions},
        "relations": {r["relname"]: (r["relkind"], r["options"], r["def"], r["acl"]) for r in relations},
        "triggers": {(r["tbl"], r["tgname"]): (r["def"], r["tgenabled"]) for r in triggers},
        "policies": {(r["schemaname"], r["tablename"], r["policyname"]): tuple(r.values()) for r in policies},
    }


def _born_after_the_cut() -> set[str]:
    """Functions first defined after the cut (their file's history names only later numbered files, such as
    the columns they guard): the numbered files alone never had them, so the comparisons leave them out."""
    later = set()
    for path in (migrations_dir() / "functions").glob("*.sql"):
        history = re.search(r"Its history, in numbered files: (.*)$", path.read_text(), re.M)
        numbers = re.findall(r"\b(\d{4})_\w+\.sql", history.group(1)) if history else []
        new = "no numbered file defined it before" in path.read_text()
        if new or (numbers and min(numbers) > LAST_WITH_DEFINITIONS):
            later.add(path.stem)
    return later


def _dropped() -> set[str]:
    """The functions `sql/dropped/` drops (each file is named after the function it drops)."""
    return {p.stem for p in (migrations_dir() / "dropped").glob("*.sql")}


def _runs_a_dropped_function(trigger_def: str) -> bool:
    return any(re.search(rf"EXECUTE FUNCTION (public\.)?{name}\(", trigger_def) for name in _dropped())


def _short(key: object) -> str:
    """A catalog key as CHANGED_SINCE names it: `ledger_confirm`, `profiles.profiles_gate_guard`."""
    if isinstance(key, tuple):
        return ".".join(key[-2:])
    return str(key).split("(")[0]


def _numbered_only(tmp_path: Path) -> Path:
    """A migrations folder of the numbered files alone: the database as it was before the repeatables."""
    folder = tmp_path / "numbered"
    folder.mkdir()
    for path in migrations_dir().glob("*.sql"):
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.parametrize("flavour", ["plain", "supabase"])
async def test_repeatables_define_exactly_what_the_numbered_files_left(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path, flavour: str
) -> None:
    """Built from the numbered files alone, and from numbered + repeatable files: every function definition,
    view, trigger, policy and privilege is the same, on plain PostgreSQL and on a Supabase-like one, except
    the functions `dropped/` drops and the triggers that ran them, which are there before and gone after."""
    catalogs = []
    for folder in (_numbered_only(tmp_path), migrations_dir()):
        url = await empty_database()
        conn = await asyncpg.connect(url)
        try:
            if flavour == "supabase":
                await conn.execute(ROLES)
                await conn.execute(SUPABASE_LIKE)
            applied = await migrate(url, folder)
            if folder == migrations_dir():
                assert applied[len(load_migrations()) :] == [r.name for r in load_repeatables()]
            catalogs.append(await _catalog(conn))
        finally:
            await conn.close()
    before, after = catalogs
    gone_functions = {
        sig for sig in before["functions"] if sig.split("(")[0].removeprefix("public.") in _dropped()
    }
    gone_triggers = {key for key, (tdef, _) in before["triggers"].items() if _runs_a_dropped_function(tdef)}
    assert len(gone_functions) == len(_dropped()) and gone_triggers, (
        "dropped/ names what the numbered files left"
    )
    assert not gone_functions & set(after["functions"]) and not gone_triggers & set(after["triggers"])
    for part, gone in (("functions", gone_functions), ("triggers", gone_triggers)):
        before[part] = {k: v for k, v in before[part].items() if k not in gone}
    functions, policy_tables = _changed_since_the_cut()
    functions |= _born_after_the_cut()
    triggers = _triggers_of(functions)

    def kept(part: str, key: Any) -> bool:
        if part == "functions":
            return str(key).split("(")[0].removeprefix("public.") not in functions
        if part == "triggers":
            return key[1] not in triggers
        if part == "policies":
            return key[1] not in policy_tables
        return True

    for part in ("functions", "relations", "triggers", "policies"):
        assert {k for k in before[part] if kept(part, k)} == {k for k in after[part] if kept(part, k)}, part
        differ = sorted(
            _short(k) for k in before[part] if kept(part, k) and before[part][k] != after[part][k]
        )
        expected = sorted(_short(k) for k in before[part] if kept(part, k) and _short(k) in CHANGED_SINCE)
        assert differ == expected, (
            f"{part} differ after the repeatables (name a deliberate change in CHANGED_SINCE)"
        )
    # Not a comparison of two empty sets: what 0001-0027 leave is all there.
    assert len(before["functions"]) > 60 and len(before["triggers"]) > 60 and len(before["policies"]) > 15


async def test_every_definition_has_its_one_file(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """Each function of `public`, view and table with policies that the numbered files leave has exactly one
    repeatable file, of its name, holding its definition or (`dropped/`) its drop; each trigger is in the file
    of its function."""
    url = await empty_database()
    await migrate(url, _numbered_only(tmp_path))
    conn = await asyncpg.connect(url)
    try:
        functions = [
            r["proname"]
            for r in await conn.fetch(
                "SELECT proname FROM pg_proc p WHERE pronamespace = 'public'::regnamespace AND NOT EXISTS "
                "(SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid "
                "AND d.deptype = 'e') ORDER BY 1"
            )
        ]
        views = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT relname FROM pg_class WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace"
            )
        }
        policy_tables = {
            r["tablename"]
            for r in await conn.fetch(
                "SELECT DISTINCT tablename FROM pg_policies WHERE schemaname = 'public'"
            )
        }
        triggers = await conn.fetch(
            "SELECT tgname, tgfoid::regproc::text AS fn, tgrelid::regclass::text AS tbl FROM pg_trigger "
            "WHERE NOT tgisinternal"
        )
    finally:
        await conn.close()
    sql = migrations_dir()
    assert len(functions) == len(set(functions)), "an overloaded function: give each its own file"
    # (Functions new or changed since the cut exist as they are only with their files.)
    new_since = _changed_since_the_cut()[0] | _born_after_the_cut()
    defined = {p.stem for p in (sql / "functions").glob("*.sql")}
    assert (defined - new_since) | _dropped() == set(functions) - new_since and not defined & _dropped()
    assert {p.stem for p in (sql / "views").glob("*.sql")} == views
    new_policies = _changed_since_the_cut()[1]
    assert {p.stem for p in (sql / "policies").glob("*.sql")} - new_policies == policy_tables - new_policies
    for name in sorted(set(functions) | defined):
        if name in _dropped():
            text = (sql / "dropped" / f"{name}.sql").read_text()
            assert re.search(rf"^DROP FUNCTION IF EXISTS public\.{name}\(", text, re.M), name
            continue
        text = (sql / "functions" / f"{name}.sql").read_text()
        assert re.search(rf"^CREATE OR REPLACE FUNCTION public\.{name}\(", text, re.M), name
    for t in triggers:
        fn = t["fn"].removeprefix("public.")
        table = t["tbl"] if "." in t["tbl"] else f"public.{t['tbl']}"
        if fn in _dropped():
            text = (sql / "dropped" / f"{fn}.sql").read_text()
            assert f"DROP TRIGGER IF EXISTS {t['tgname']} ON {table};" in text, t
            continue
        text = (sql / "functions" / f"{fn}.sql").read_text()
        assert re.search(
            rf"CREATE OR REPLACE TRIGGER {t['tgname']}\s.*?\bON {re.escape(table)}\s", text, re.S
        ), t


def test_numbered_migrations_after_the_cut_define_nothing_repeatable() -> None:
    """A numbered migration after 0027 changes the schema only: a function, view, trigger or policy is
    created in its repeatable file (`tools/sql_split.py` moves one written the old way)."""
    offenders = [
        f"{m.name}: CREATE {hit.group(1).upper()}"
        for m in load_migrations()
        if m.version > LAST_WITH_DEFINITIONS
        for hit in _DEFINES.finditer(m.sql)
    ]
    assert offenders == []


def test_the_lint_sees_a_definition_written_the_old_way() -> None:
    """The check above would catch the mistake it is for (a function body defined in a numbered file)."""
    old_style = "ALTER TABLE t ADD c INT;\n-- note\ncreate or replace function public.f() returns int\n"
    assert [h.group(1) for h in _DEFINES.finditer(old_style)] == ["function"]
    assert [h.group(1) for h in _DEFINES.finditer("-- CREATE FUNCTION in a comment\n")] == []


async def test_a_changed_file_runs_again_and_an_unchanged_one_does_not(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    url = await empty_database()
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    await migrate(url, folder)
    assert await migrate(url, folder) == []

    changed = folder / "functions" / "ledger_limit_message.sql"
    changed.write_text(changed.read_text().replace("$$;", "$$;\n-- a comment outside the body\n", 1))
    conn = await asyncpg.connect(url)
    try:
        assert await pending_migrations(conn, folder) == ["functions/ledger_limit_message.sql"]
        assert await migrate(url, folder) == ["functions/ledger_limit_message.sql"]
        assert await pending_migrations(conn, folder) == []
        assert await migrate(url, folder) == []

        # A change to the body is what the database runs from then on.
        said = "'at most KES ${max_daily_kes_text} a day'"
        assert said in changed.read_text()
        changed.write_text(changed.read_text().replace(said, "'at most KES 1 a day (changed)'"))
        assert await migrate(url, folder) == ["functions/ledger_limit_message.sql"]
        assert (
            await conn.fetchval("SELECT ledger_limit_message('daily_limit')")
            == "at most KES 1 a day (changed)"
        )
        recorded = await conn.fetchval(
            "SELECT count(*) FROM schema_repeatables WHERE name = 'functions/ledger_limit_message.sql'"
        )
        assert recorded == 1
    finally:
        await conn.close()


async def test_a_failing_repeatable_changes_nothing_and_stays_pending(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    url = await empty_database()
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    await migrate(url, folder)
    broken = folder / "views" / "zz_broken.sql"
    broken.write_text("CREATE OR REPLACE VIEW public.half AS SELECT 1 AS one;\nSELECT no_such_function();\n")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(url, folder)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.half')") is None
        assert await pending_migrations(conn, folder) == ["views/zz_broken.sql"]
    finally:
        await conn.close()


def test_order_is_by_folder_then_name_and_requires_comes_first(tmp_path: Path) -> None:
    for sub in ("functions", "views", "policies"):
        (tmp_path / sub).mkdir()
    (tmp_path / "policies" / "a.sql").write_text("SELECT 1;")
    (tmp_path / "views" / "v.sql").write_text("SELECT 1;")
    (tmp_path / "functions" / "b.sql").write_text("SELECT 1;")
    (tmp_path / "functions" / "a.sql").write_text("-- requires: views/v.sql\nSELECT 1;")
    assert [r.name for r in load_repeatables(tmp_path)] == [
        "functions/b.sql",
        "views/v.sql",
        "functions/a.sql",
        "policies/a.sql",
    ]
    (tmp_path / "views" / "v.sql").write_text("-- requires: functions/a.sql\nSELECT 1;")
    with pytest.raises(MigrationError, match="cycle"):
        load_repeatables(tmp_path)
    (tmp_path / "views" / "v.sql").write_text("-- requires: functions/gone.sql\nSELECT 1;")
    with pytest.raises(MigrationError, match=r"requires functions/gone\.sql"):
        load_repeatables(tmp_path)


def test_sql_in_an_unknown_folder_is_refused(tmp_path: Path) -> None:
    """A file in a folder the migrator does not read would be silently ignored: it is refused instead."""
    (tmp_path / "function").mkdir()
    (tmp_path / "function" / "x.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="function/"):
        load_repeatables(tmp_path)


async def test_a_deployed_database_loses_what_dropped_drops_once(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """A database migrated before a function moved to `dropped/` (so it holds the function and its triggers,
    and its repeatables are recorded) drops them on its next migration, and only then."""
    url = await empty_database()
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    drops = sorted((folder / "dropped").glob("*.sql"))
    assert drops
    shutil.rmtree(folder / "dropped")
    await migrate(url, folder)
    conn = await asyncpg.connect(url)
    try:
        names = [p.stem for p in drops]
        count = "SELECT count(*) FROM pg_proc WHERE proname = ANY($1::text[])"
        triggers = "SELECT count(*) FROM pg_trigger WHERE tgfoid::regproc::text = ANY($1::text[])"
        assert await conn.fetchval(count, names) == len(names)
        assert await conn.fetchval(triggers, names) > 0
        shutil.copytree(migrations_dir() / "dropped", folder / "dropped")
        assert await pending_migrations(conn, folder) == [f"dropped/{p.name}" for p in drops]
        assert await migrate(url, folder) == [f"dropped/{p.name}" for p in drops]
        assert await conn.fetchval(count, names) == 0
        assert await conn.fetchval(triggers, names) == 0
        assert await migrate(url, folder) == []
    finally:
        await conn.close()


def test_a_name_both_dropped_and_defined_is_refused(tmp_path: Path) -> None:
    """Its drop, re-run when its file changes, would take the new definition away without re-creating it."""
    for sub in ("dropped", "functions"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "f.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"functions/f\.sql defines what dropped/ drops"):
        load_repeatables(tmp_path)


def test_a_limit_is_a_placeholder_and_changing_it_re_runs_what_uses_it() -> None:
    """`ledger.limits` is the one home of the limits: the SQL holds `${max_transaction_kes}`, the migrator
    puts the value in before the checksum, so a new value re-runs exactly the files that use it."""
    today = {r.name: r for r in load_repeatables()}
    check = today["functions/ledger_check_intent_fields.sql"].sql
    assert f"IF p_amount > {MAX_TRANSACTION_KES} THEN" in check and "${" not in check
    assert f"at most KES {kes(MAX_TRANSACTION_KES)}'" in check
    assert f"+ p_amount > {MAX_DAILY_KES} THEN" in today["functions/ledger_limit_refusal.sql"].sql

    lower = {**sql_placeholders(), "max_transaction_kes": "100000", "max_transaction_kes_text": "100,000"}
    moved = {r.name for r in load_repeatables(placeholders=lower) if r.checksum != today[r.name].checksum}
    assert moved == {"functions/ledger_check_intent_fields.sql"}


def test_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "f.sql").write_text("SELECT ${max_transaction_kess};")
    with pytest.raises(MigrationError, match=r"unknown placeholder.*max_transaction_kess"):
        load_repeatables(tmp_path)
