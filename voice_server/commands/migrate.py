"""`ongea-pesa migrate`: apply pending migrations (a no-op when up to date)."""

from __future__ import annotations

import argparse
import sys

from ledger.db import resolve_database_url
from ledger.migrate import MigrationError, migrate
from voice_server.loop import run as run_loop
from voice_server.settings import Settings
from voice_server.startup_errors import announce_database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("migrate", help="apply pending database migrations")
    p.add_argument(
        "--database-url", help="PostgreSQL URL (default: DATABASE_URL, else the embedded database)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    dsn = resolve_database_url(args.database_url or settings.database_url, settings.data_dir)
    announce_database(args.database_url or settings.database_url, dsn, settings.data_dir)
    try:
        applied = run_loop(migrate(dsn))
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print("database is up to date")
    return 0
