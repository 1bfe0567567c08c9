"""`ongea-pesa migrate`: apply pending migrations (a no-op when up to date)."""

from __future__ import annotations

import argparse
import sys

from ledger.adopt import AdoptionError, apply_adoption, plan_adoption
from ledger.db import connect, resolve_database_url
from ledger.migrate import MigrationError, migrate
from voice_server.loop import run as run_loop
from voice_server.settings import Settings
from voice_server.startup_errors import announce_database


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("migrate", help="apply pending database migrations")
    p.add_argument(
        "--database-url", help="PostgreSQL URL (default: DATABASE_URL, else the embedded database)"
    )
    p.add_argument(
        "--adopt",
        action="store_true",
        help="plan the adoption of a database made from the earlier schema (changes nothing)",
    )
    p.add_argument(
        "--apply",
        action="store_true",
        help="with --adopt: print the plan, then adopt the database (rerunnable; a rerun validates the "
        "checks whose listed rows were fixed)",
    )
    p.set_defaults(func=run)


async def _adopt(dsn: str, apply: bool) -> list[str]:
    conn = await connect(dsn)
    try:
        # The plan first, and at once: a refused --apply still shows what it refused for.
        print((await plan_adoption(conn)).render(), flush=True)
        return await apply_adoption(conn, dsn) if apply else []
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    dsn = resolve_database_url(args.database_url or settings.database_url, settings.data_dir)
    announce_database(args.database_url or settings.database_url, dsn, settings.data_dir)
    if args.apply and not args.adopt:
        print("migrate: --apply goes with --adopt", file=sys.stderr)
        return 2
    if args.adopt:
        try:
            said = run_loop(_adopt(dsn, args.apply))
            if said:
                print("\n".join(said))
        except AdoptionError as exc:
            print(f"migrate --adopt: {exc}", file=sys.stderr)
            return 1
        return 0
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
