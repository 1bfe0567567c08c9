"""Start-up shared by the server and the CLI: find (or start) the database, migrate it, open a pool; and how
every long-running command (serve, the M-Pesa worker, the sweeper, the simulator) starts and stops."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg
from pydantic import ValidationError

from ledger.db import create_pool, resolve_database_url
from ledger.exposure import exposure
from ledger.migrate import migrate
from voice_server.log_redaction import install_log_redaction
from voice_server.loop import run as run_loop
from voice_server.settings import Settings, startup_problems
from voice_server.startup_errors import StartupError, announce_database, validation_lines

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


async def open_database(settings: Settings, *, max_size: int | None = None) -> asyncpg.Pool:
    """A pool on a migrated database: `DATABASE_URL`, or the embedded PostgreSQL under the data dir."""
    # Said first, before the embedded PostgreSQL (if any) starts and logs: the first line a command prints.
    announce_database(settings.database_url, settings.database_url or "", settings.data_dir)
    dsn = resolve_database_url(settings.database_url, settings.data_dir)
    await migrate(dsn)
    largest = max_size or settings.db_pool_max
    return await create_pool(dsn, min_size=min(settings.db_pool_min, largest), max_size=largest)


async def refuse_exposed_grants(pool: asyncpg.Pool, settings: Settings) -> None:
    """A production server or worker does not run on a database whose API roles hold grants the migrations
    took away (a user could read their PIN hash, or call a money function as themselves); elsewhere it is a
    warning. `ongea-pesa check` prints the statements that take them back."""
    async with pool.acquire() as conn:
        found = await exposure(conn)
    if not found:
        return
    line = (
        f"anon, authenticated or PUBLIC hold {len(found)} grant(s) the migrations took away (first: "
        f"{found[0]}); `ongea-pesa check` prints the statements that take them back"
    )
    if settings.daraja_environment == "production":
        raise StartupError(line)
    logging.getLogger("ongea_pesa").warning(line)


def command_settings(database_url: str | None) -> Settings:
    """A command's settings: the environment's, with its `--database-url` taking precedence."""
    settings = Settings()
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


def configure_logging(settings: Settings) -> None:
    """The logging of a long-running command (serve, the M-Pesa worker, the sweeper): one format, pgserver's
    chatter quietened, and the callback secret redacted from every line."""
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its INFO lines echo every pg_ctl call
    install_log_redaction(settings)


def refused_to_start(settings: Settings) -> bool:
    """Whether a long-running command (serve, the M-Pesa worker) must not start with these settings; every
    reason is then said on stderr, one line each, in the README's Deploy order."""
    problems = startup_problems(settings)
    for problem in problems:
        print(f"ongea-pesa: refusing to start: {problem}", file=sys.stderr)
    return bool(problems)


def read_settings(command: str, overrides: dict[str, Any] | None = None) -> Settings | None:
    """The settings, or None after printing every one that cannot be read (one line each) and every other
    problem found with the readable ones (each unreadable setting taken at its default to find them)."""
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        for line in validation_lines(exc):
            print(f"ongea-pesa {command}: {line}", file=sys.stderr)
        broken = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
        if not broken:
            broken = {"db_pool_min", "db_pool_max"}  # the one rule between settings
    defaults = {name: Settings.model_fields[name].default for name in broken}
    try:
        rest = Settings(**{**(overrides or {}), **defaults})
    except ValidationError:
        return None
    for problem in startup_problems(rest):
        print(f"ongea-pesa {command}: {problem}", file=sys.stderr)
    return None


def run_long_running(
    command: str,
    main: Callable[[Settings], Coroutine[Any, Any, int | None]],
    *,
    overrides: dict[str, Any] | None = None,
    refuse_unsafe: bool = True,
    redact_logs: bool = True,
) -> int:
    """Start a long-running command and run `main` on the event loop until it returns (its exit status, None
    for 0) or Ctrl-C stops it (0). Before it: the settings are read (every unreadable one said: exit 1), the
    logging is set (with the callback secret redacted from every line unless `redact_logs` is off), and,
    with `refuse_unsafe`, every reason these settings must not run is said (exit 2)."""
    settings = read_settings(command, overrides)
    if settings is None:
        return 1
    if redact_logs:
        configure_logging(settings)
    else:
        logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    if refuse_unsafe and refused_to_start(settings):
        return 2
    try:
        return run_loop(main(settings)) or 0
    except KeyboardInterrupt:
        return 0


@contextlib.asynccontextmanager
async def database(settings: Settings, *, max_size: int | None = None) -> AsyncIterator[asyncpg.Pool]:
    """A pool of the migrated database (`open_database`), closed when the block ends, whatever happens."""
    pool = await open_database(settings, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()
