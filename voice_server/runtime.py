"""Start-up shared by the server and the CLI: find (or start) the database, migrate it, open a pool."""

from __future__ import annotations

import logging
import sys

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


def command_settings(database_url: str | None) -> Settings:
    """A command's settings: the environment's, with its `--database-url` taking precedence."""
    settings = Settings()
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


def configure_logging(settings: Settings) -> None:
    """The logging of a long-running command (serve, the M-Pesa worker, the sweeper): one format, pgserver's
    chatter quietened, and the callback secret redacted from every line."""
    from voice_server.app import install_log_redaction  # the app imports much that a CLI command need not

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its INFO lines echo every pg_ctl call
    install_log_redaction(settings)


def refused_to_start(settings: Settings) -> bool:
    """Whether a long-running command (serve, the M-Pesa worker) must not start with these settings; the
    reason is then said in one line on stderr."""
    refusal = settings.startup_refusal()
    if refusal is not None:
        print(f"ongea-pesa: refusing to start: {refusal}", file=sys.stderr)
    return refusal is not None
