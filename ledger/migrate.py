"""Numbered plain-SQL migrations from `sql/`: applied in order, each in its own transaction, recorded with a
checksum so that a second run is a no-op and an edited, already-applied file is refused."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ledger.db import connect

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


async def migrate(dsn: str, directory: Path | None = None) -> list[str]:
    """Apply what is pending; return the names applied (empty when up to date)."""
    migrations = load_migrations(directory)
    conn = await connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            return await _apply_pending(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


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
