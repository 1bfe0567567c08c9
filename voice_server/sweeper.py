"""The expiry sweeper: voice sessions past their `expires_at` (15 min) and proposals unanswered past their
time to live (120 s) are ended even when nobody is connected any more, so their holds never outlive them.

It runs inside every `serve` process and as `ongea-pesa sweep [--once]`. Each pass takes its rows with
`FOR UPDATE SKIP LOCKED` (the functions of `sql/0012_conversation_server.sql`), so any number of processes
can sweep at once without doing anything twice and without waiting on a turn in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from voice_server.appkeys import POOL_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class SweepResult:
    proposals_expired: int
    sessions_expired: int
    deposits_expired: int = 0


async def sweep(pool: asyncpg.Pool, *, batch: int = BATCH) -> SweepResult:
    """One pass (each batch its own short transaction) until nothing due is left that is not locked."""
    sessions = proposals = 0
    while True:
        rows = await pool.fetch("SELECT expired_session_id FROM sweep_expire_sessions($1)", batch)
        sessions += len(rows)
        if len(rows) < batch:
            break
    while True:
        count: int = await pool.fetchval("SELECT sweep_expire_proposals($1)", batch)
        proposals += count
        if count < batch:
            break
    deposits: int = await pool.fetchval("SELECT ledger_expire_deposits(NULL)")
    return SweepResult(proposals, sessions, deposits)


async def sweep_forever(pool: asyncpg.Pool, interval: float) -> None:
    while True:
        try:
            result = await sweep(pool)
            if result.proposals_expired or result.sessions_expired or result.deposits_expired:
                log.info(
                    "expired %d proposals, %d voice sessions and %d expected deposits",
                    result.proposals_expired,
                    result.sessions_expired,
                    result.deposits_expired,
                )
        except (OSError, asyncpg.PostgresError):
            log.exception("expiry sweep failed; trying again in %.0fs", interval)
        await asyncio.sleep(interval)


def setup_sweeper(app: web.Application, *, interval: float | None = None) -> None:
    async def sweeper_context(app: web.Application) -> AsyncIterator[None]:
        every = interval if interval is not None else app[SETTINGS_KEY].sweep_interval_seconds
        task = asyncio.get_running_loop().create_task(
            sweep_forever(app[POOL_KEY], every), name="expiry-sweeper"
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(sweeper_context)
