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

from voice_server.loop import run as run_loop
from voice_server.loop import until_signal
from voice_server.runtime import command_settings, configure_logging, open_database
from voice_server.settings import Settings
from voice_server.sweeper import sweep, sweep_forever


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sweep", help="expire voice sessions and proposals that ran out (loops unless --once)")
    p.add_argument("--once", action="store_true", help="one pass, print what it did as JSON, exit")
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL, else the embedded database)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = command_settings(args.database_url)
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(_run(settings, once=args.once))
    return 0


async def _run(settings: Settings, *, once: bool) -> None:
    pool = await open_database(settings, max_size=2)
    try:
        if once:
            result = await sweep(pool)
            print(
                json.dumps(
                    {
                        "sessions_expired": result.sessions_expired,
                        "proposals_expired": result.proposals_expired,
                    }
                )
            )
        else:
            await _until_stopped(sweep_forever(pool, settings.sweep_interval_seconds))
    finally:
        await pool.close()


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
