"""`ongea-pesa sweep [--once]`: the expiry sweeper on its own (it also runs inside every `serve`). Several can
run at once, beside the servers: each pass takes rows with FOR UPDATE SKIP LOCKED. The loop stops on SIGTERM
or SIGINT (as `serve` does), closing its pool and exiting 0; every batch is its own transaction, so a pass cut
short leaves nothing half done."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Coroutine
from typing import Any

from voice_server.loop import until_signal
from voice_server.runtime import database, run_long_running
from voice_server.settings import Settings
from voice_server.sweeper import sweep, sweep_forever


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sweep", help="expire voice sessions and proposals that ran out (loops unless --once)")
    p.add_argument("--once", action="store_true", help="one pass, print what it did as JSON, exit")
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL, else the embedded database)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = {"database_url": args.database_url} if args.database_url else None
    return run_long_running(
        "sweep", lambda settings: _run(settings, once=args.once), overrides=overrides, refuse_unsafe=False
    )


async def _run(settings: Settings, *, once: bool) -> None:
    async with database(settings, max_size=2) as pool:
        if once:
            result = await sweep(pool, turn_retention_days=settings.session_turn_retention_days)
            print(
                json.dumps(
                    {
                        "sessions_expired": result.sessions_expired,
                        "proposals_expired": result.proposals_expired,
                        "turns_removed": result.turns_removed,
                    }
                )
            )
        else:
            await _until_stopped(
                sweep_forever(pool, settings.sweep_interval_seconds, settings.session_turn_retention_days)
            )


async def _until_stopped(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` until SIGTERM or SIGINT, then cancel it: without this a process manager's SIGTERM killed
    the loop outright (exit -15) and its pool was never closed."""
    task = asyncio.create_task(work, name="expiry-sweeper")
    stopped = asyncio.create_task(until_signal())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # re-raises what ended the loop, if it was not the signal
