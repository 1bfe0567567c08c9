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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from aiohttp import WSCloseCode, web

from voice_server.appkeys import POOL_KEY, SETTINGS_KEY
from voice_server.session_turns import delete_expired_turns
from voice_server.ws.live import LIVE_KEY

log = logging.getLogger(__name__)

BATCH = 500
# How long the live feed's events are kept for a stream to resume from (sql/0023, app_events_prune).
EVENTS_KEPT = timedelta(days=7)
EXPIRED_CLOSE = WSCloseCode.POLICY_VIOLATION  # as a turn on an expired session closes its socket


@dataclass
class SweepResult:
    proposals_expired: int
    sessions_expired: int
    deposits_expired: int = 0
    turns_removed: int = 0
    events_pruned: int = 0
    expired_session_ids: list[str] = field(default_factory=list)


async def sweep(
    pool: asyncpg.Pool, *, batch: int = BATCH, turn_retention_days: float | None = None
) -> SweepResult:
    """One pass (each batch its own short transaction) until nothing due is left that is not locked; with
    `turn_retention_days`, session turns older than that are removed too."""
    sessions = proposals = 0
    expired: list[str] = []
    while True:
        rows = await pool.fetch("SELECT expired_session_id FROM sweep_expire_sessions($1)", batch)
        sessions += len(rows)
        expired += [str(r["expired_session_id"]) for r in rows]
        if len(rows) < batch:
            break
    while True:
        count: int = await pool.fetchval("SELECT sweep_expire_proposals($1)", batch)
        proposals += count
        if count < batch:
            break
    deposits: int = await pool.fetchval("SELECT ledger_expire_deposits(NULL)")
    turns = 0 if turn_retention_days is None else await delete_expired_turns(pool, turn_retention_days)
    pruned: int = await pool.fetchval("SELECT app_events_prune($1, $2)", EVENTS_KEPT, batch * 20)
    # API payments' Idempotency-Keys are kept 24 hours (sql/0026); a key that makes a request a second for
    # a day would otherwise leave its rows, and their answers, for ever.
    await pool.fetchval("SELECT idempotency_keys_prune(NULL)")
    return SweepResult(proposals, sessions, deposits, turns, pruned, expired)


OnExpired = Callable[[list[str]], Awaitable[None]]


async def sweep_forever(
    pool: asyncpg.Pool,
    interval: float,
    turn_retention_days: float | None = None,
    on_expired: OnExpired | None = None,
) -> None:
    """Sweeps every `interval` seconds; `on_expired` hears the sessions each pass expired (serve closes
    their open sockets at once; other processes' sockets are closed by their own session check)."""
    while True:
        try:
            result = await sweep(pool, turn_retention_days=turn_retention_days)
            if on_expired is not None and result.expired_session_ids:
                await on_expired(result.expired_session_ids)
            if result.turns_removed:
                log.info("removed %d voice session turns past their retention", result.turns_removed)
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
        settings = app[SETTINGS_KEY]
        every = interval if interval is not None else settings.sweep_interval_seconds
        live = app.get(LIVE_KEY)

        async def close_sockets(session_ids: list[str]) -> None:
            if live is not None:
                for session_id in session_ids:
                    await live.close_session_sockets(session_id, EXPIRED_CLOSE, "session expired")

        task = asyncio.get_running_loop().create_task(
            sweep_forever(app[POOL_KEY], every, settings.session_turn_retention_days, close_sockets),
            name="expiry-sweeper",
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(sweeper_context)
