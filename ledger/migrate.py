"""Plain-SQL migrations from `sql/`, as Flyway runs them.

Numbered ones (`sql/NNNN_name.sql`, schema changes) are applied once each, in order, each in its own
transaction, recorded with a checksum so that a second run is a no-op and an edited, already-applied file is
refused. Repeatable ones (`sql/functions/`, `sql/views/`, `sql/policies/`: the one current definition of each
function, view, trigger and policy; `sql/dropped/`: the drop of one that is gone) are applied after them, in a
fixed order, each again whenever its checksum changes, so a function is changed by editing its file and
dropped by moving it to `dropped/` (`sql/README.md`)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ledger.db import connect
from ledger.limits import sql_placeholders

_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")
# Any constant will do: it only keeps two migrators from interleaving on one database.
_LOCK_KEY = 0x0E6EA_9E5A


class MigrationError(RuntimeError):
    """The database and the migration files disagree; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


# The folders of repeatable migrations, in the order they apply: the drops of what is gone first, then
# functions (with the triggers that run them) before the views and policies that may call them. A name in
# `dropped/` may be in no other folder (its drop, re-run, would take the new definition away).
REPEATABLE_FOLDERS = ("dropped", "functions", "views", "policies")
# `-- requires: views/spending.sql` in a repeatable file: that file applies first (only needed across the
# folder order above, or between two files of one folder).
_REQUIRES = re.compile(r"^--\s*requires:\s*(\S+)\s*$", re.M)
# `${max_transaction_kes}` in a repeatable file: a value from `ledger.limits`, put in before the checksum is
# taken, so a changed value re-runs the file (Flyway's placeholders).
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Repeatable:
    """A repeatable migration: `name` is its path under the migrations folder (`functions/x.sql`), `sql`
    its text with the placeholders replaced by their values."""

    name: str
    sql: str
    requires: tuple[str, ...]

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Path:
    """`ONGEA_MIGRATIONS_DIR`, else the `sql/` folder of the source tree this package runs from."""
    env = os.environ.get("ONGEA_MIGRATIONS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "sql"


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"migrations folder not found: {directory} (set ONGEA_MIGRATIONS_DIR)")
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not of the form NNNN_name.sql: {path.name}")
        found.append(Migration(match.group(1), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a number in {directory}")
    return found


def load_repeatables(
    directory: Path | None = None, placeholders: dict[str, str] | None = None
) -> list[Repeatable]:
    """The repeatable migrations in the order they apply: by folder (`REPEATABLE_FOLDERS`), then by name,
    except that a file comes after those it `requires`. Placeholders default to `ledger.limits`'s."""
    directory = directory or migrations_dir()
    values = sql_placeholders() if placeholders is None else placeholders
    found: dict[str, Repeatable] = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []:
        files = sorted(sub.rglob("*.sql"))
        if files and sub.name not in REPEATABLE_FOLDERS:
            raise MigrationError(
                f"SQL files in {sub.name}/, which is not a folder of repeatable migrations "
                f"({', '.join(REPEATABLE_FOLDERS)})"
            )
        for path in files:
            if path.parent != sub:
                nested = path.relative_to(directory)
                raise MigrationError(f"repeatable migration in a nested folder: {nested}")
            name = f"{sub.name}/{path.name}"
            sql = _substitute(name, path.read_text(), values)
            found[name] = Repeatable(name, sql, tuple(_REQUIRES.findall(sql)))
    dropped = {n.split("/", 1)[1] for n in found if n.startswith("dropped/")}
    for name in found:
        if not name.startswith("dropped/") and name.split("/", 1)[1] in dropped:
            raise MigrationError(f"{name} defines what dropped/ drops: remove one of the two")
    return _dependency_order(found)


def _substitute(name: str, sql: str, values: dict[str, str]) -> str:
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(sql)} - set(values))
    if unknown:
        raise MigrationError(
            f"{name}: unknown placeholder(s) {', '.join(unknown)} (known: {', '.join(values)})"
        )
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], sql)


def _dependency_order(found: dict[str, Repeatable]) -> list[Repeatable]:
    """Folder order, then name, each file after the files it requires (`MigrationError` on a cycle or a
    missing file)."""

    def rank(name: str) -> tuple[int, str]:
        return (REPEATABLE_FOLDERS.index(name.split("/", 1)[0]), name)

    for r in found.values():
        for req in r.requires:
            if req not in found:
                raise MigrationError(f"{r.name} requires {req}, which is not a repeatable migration")
    ordered: list[Repeatable] = []
    placed: set[str] = set()
    remaining = sorted(found, key=rank)
    while remaining:
        ready = next((n for n in remaining if set(found[n].requires) <= placed), None)
        if ready is None:
            cycle = ", ".join(remaining)
            raise MigrationError(f"repeatable migrations require each other in a cycle: {cycle}")
        ordered.append(found[ready])
        placed.add(ready)
        remaining.remove(ready)
    return ordered


async def migrate(dsn: str, directory: Path | None = None, *, adopting: bool = False) -> list[str]:
    """Apply what is pending: the numbered migrations not applied yet, then the repeatable ones that are new
    or changed. Return the names applied (empty when up to date). `adopting`: the adoption's own step."""
    migrations = load_migrations(directory)
    repeatables = load_repeatables(directory)
    conn = await connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            if not adopting:
                await _refuse_unfinished_adoption(conn)
            done = await _apply_pending(conn, migrations)
            return done + await _apply_repeatables(conn, repeatables)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def _applied(conn: asyncpg.Connection, migrations: list[Migration]) -> dict[str, asyncpg.Record]:
    """The applied migrations by version, once they agree with the files (else `MigrationError`)."""
    applied = {
        r["version"]: r for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    }
    on_disk = {m.version for m in migrations}
    for version, row in applied.items():
        if version not in on_disk:
            raise MigrationError(f"migration {row['name']} is applied but its file is gone")
    for m in migrations:
        row = applied.get(m.version)
        if row is not None and row["checksum"] != m.checksum:
            raise MigrationError(
                f"migration {m.name} was edited after it was applied (checksum differs); "
                "write a new migration instead"
            )
    return applied


# The tables of the founding document (sql/0002): a database that has them before 0002 is applied was made
# from the earlier schema, and is adopted (`migrate --adopt`, ledger/adopt.py), never migrated as it is.
FOUNDING_MIGRATION = "0002"
FOUNDING_TABLES = (
    "profiles",
    "transactions",
    "voice_sessions",
    "balance_history",
    "mpesa_transactions",
    "payment_methods",
    "contacts",
    "subscriptions",
    "subscription_plans",
)


# The steps of `migrate --adopt --apply` (ledger/adopt.py), recorded in adopt_backup.steps as each is done.
APPLY_STEPS = ("backup", "aside", "migrate", "copy")


async def _refuse_unfinished_adoption(conn: asyncpg.Connection) -> None:
    """An adoption started and not finished (under way, or killed): nothing else migrates the database or
    serves it, or a server would build an empty schema where the rows set aside are to come back."""
    if not await conn.fetchval("SELECT to_regclass('adopt_backup.steps') IS NOT NULL"):
        return
    done = [r["step"] for r in await conn.fetch("SELECT step FROM adopt_backup.steps")]
    if not set(done) >= set(APPLY_STEPS):
        raise MigrationError(
            f"an adoption of this database was started and not finished (steps done: "
            f"{', '.join(s for s in APPLY_STEPS if s in done) or 'none'}): finish it with "
            "`ongea-pesa migrate --adopt --apply` before anything migrates or serves it"
        )


async def _refuse_unadopted(conn: asyncpg.Connection) -> None:
    """Before 0002: the founding tables already there mean an earlier database, on which 0002 would stop
    with a bare "already exists" (after 0001 was recorded); say what to run instead, applying nothing."""
    found = await conn.fetch(
        """SELECT c.relname FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
             AND c.relname = ANY($1::text[]) ORDER BY c.relname""",
        list(FOUNDING_TABLES),
    )
    if found:
        raise MigrationError(
            f"this database already has {', '.join(r['relname'] for r in found)} but not their migration: "
            "it was made from the earlier schema; run `ongea-pesa migrate --adopt` to see how it would be "
            "adopted, keeping every row (README, Going to production)"
        )


async def pending_migrations(conn: asyncpg.Connection, directory: Path | None = None) -> list[str]:
    """The names of the files `migrate` would apply, changing nothing (`ongea-pesa check`): numbered ones not
    applied yet, then repeatable ones new or changed; `MigrationError` where `migrate` would refuse."""
    migrations = load_migrations(directory)
    repeatables = load_repeatables(directory)
    await _refuse_unfinished_adoption(conn)
    applied = {}
    if await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL"):
        applied = await _applied(conn, migrations)
    if FOUNDING_MIGRATION not in applied:
        await _refuse_unadopted(conn)
    pending = [m.name for m in migrations if m.version not in applied]
    recorded = await _repeatables_applied(conn)
    return pending + [r.name for r in repeatables if recorded.get(r.name) != r.checksum]


async def _repeatables_applied(conn: asyncpg.Connection) -> dict[str, str]:
    """The checksum each repeatable migration had when it was last applied, by name."""
    if not await conn.fetchval("SELECT to_regclass('public.schema_repeatables') IS NOT NULL"):
        return {}
    rows = await conn.fetch("SELECT name, checksum FROM schema_repeatables")
    return {r["name"]: r["checksum"] for r in rows}


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS public.schema_migrations (
            version TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
        )
        """
    )
    applied = await _applied(conn, migrations)
    if FOUNDING_MIGRATION not in applied:
        await _refuse_unadopted(conn)
    done: list[str] = []
    for m in migrations:
        if m.version in applied:
            continue
        async with conn.transaction():
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )
        done.append(m.name)
    return done


async def _apply_repeatables(conn: asyncpg.Connection, repeatables: list[Repeatable]) -> list[str]:
    """Apply, each in its own transaction, the repeatable migrations whose checksum is not the one recorded
    (a file no longer on disk stays recorded: what it created stays too, until a migration drops it)."""
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS public.schema_repeatables (
            name TEXT PRIMARY KEY,
            checksum TEXT NOT NULL,
            applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
        )
        """
    )
    # Migration bookkeeping: no one but its owner reads it (as 0008 did for schema_migrations).
    for role in await conn.fetch(
        "SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated') ORDER BY 1"
    ):
        await conn.execute(f'REVOKE ALL ON public.schema_repeatables FROM "{role["rolname"]}"')
    await conn.execute("REVOKE ALL ON public.schema_repeatables FROM PUBLIC")
    recorded = await _repeatables_applied(conn)
    done: list[str] = []
    for r in repeatables:
        if recorded.get(r.name) == r.checksum:
            continue
        async with conn.transaction():
            await conn.execute(r.sql)
            await conn.execute(
                """
                INSERT INTO schema_repeatables (name, checksum) VALUES ($1, $2)
                ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = NOW()
                """,
                r.name,
                r.checksum,
            )
        done.append(r.name)
    return done
