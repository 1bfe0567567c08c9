"""Start-up shared by the server and the CLI: find (or start) the database, migrate it, open a pool."""

from __future__ import annotations

import asyncpg

from ledger.db import create_pool, resolve_database_url
from ledger.migrate import migrate
from voice_server.settings import Settings
from voice_server.startup_errors import announce_database


async def open_database(settings: Settings, *, max_size: int | None = None) -> asyncpg.Pool:
    """A pool on a migrated database: `DATABASE_URL`, or the embedded PostgreSQL under the data dir."""
    dsn = resolve_database_url(settings.database_url, settings.data_dir)
    announce_database(settings.database_url, dsn, settings.data_dir)
    await migrate(dsn)
    largest = max_size or settings.db_pool_max
    return await create_pool(dsn, min_size=min(settings.db_pool_min, largest), max_size=largest)
