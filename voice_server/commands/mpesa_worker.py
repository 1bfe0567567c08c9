"""`ongea-pesa mpesa-worker`: the M-Pesa background duties without the HTTP server.

Sends due payouts, pushes auto top-ups, reconciles by status and STK queries, and re-applies recorded
callbacks, for a while or once, beside any number of servers on the same database: rows are claimed with
leases and the Daraja token is the one all processes share through the database. Callbacks still go to the
servers (ONGEA_PUBLIC_URL). Exit status: 0 done, 2 refused settings, 1 database unreachable or a duty of
the last round failed (each is logged).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import asyncpg

from voice_server.mpesa_routes import MpesaService
from voice_server.runtime import database, refuse_exposed_grants, run_long_running
from voice_server.settings import Settings

log = logging.getLogger("ongea_pesa")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mpesa-worker", help="send payouts and reconcile M-Pesa without serving HTTP")
    p.add_argument("--seconds", type=float, default=None, help="run this long (default: one round)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between rounds (default 1)")
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL, else the embedded database)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {"database_url": args.database_url} if args.database_url else None
    return run_long_running(
        "mpesa-worker", lambda settings: _work(settings, args.seconds, args.interval), overrides=overrides
    )


async def _work(settings: Settings, seconds: float | None, interval: float) -> int | None:
    try:
        async with database(settings, max_size=4) as pool:
            await refuse_exposed_grants(pool, settings)
            return await _rounds(pool, settings, seconds, interval)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"ongea-pesa: database unreachable: {exc}", file=sys.stderr)
        return 1


async def _rounds(pool: asyncpg.Pool, settings: Settings, seconds: float | None, interval: float) -> int:
    service = MpesaService(pool, settings, poll_interval=interval)
    try:
        await service.start_without_loop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (seconds or 0.0)
        rounds = 0
        while True:
            done = await service.logged_round()
            rounds += 1
            if loop.time() >= deadline:
                break
            if not done.backlog:  # payouts still waiting go out at once; the pause is for an idle worker
                await asyncio.sleep(interval)
        log.info("mpesa-worker: %d round(s) done", rounds)
        return 1 if done.failed else 0  # a run whose last round failed is not a success
    finally:
        await service.stop()
