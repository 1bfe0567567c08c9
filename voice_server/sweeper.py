"""The expiry sweeper: proposals unanswered past their 120 s and voice sessions past their 15 min are ended
even when nobody is connected any more, so their holds never outlive them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from ledger.service import Ledger
from voice_server.appkeys import POOL_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

_EXPIRE_SESSIONS = """
    UPDATE voice_sessions SET status = 'expired', ended_at = now()
    WHERE status = 'active' AND expires_at <= now()
    RETURNING session_id, user_id
"""


@dataclass
class SweepResult:
    proposals_expired: int
    sessions_expired: int
    deposits_expired: int = 0


async def sweep(pool: asyncpg.Pool, ledger: Ledger) -> SweepResult:
    """One pass; safe to run from several processes at once (each row changes state once). A session's
    proposals are voided for its own user only; bank_to_mpesa deposits not arrived in 24 h fail."""
    sessions = await pool.fetch(_EXPIRE_SESSIONS)
    for row in sessions:
        await ledger.cancel_session(row["session_id"], "session_expired", user_id=row["user_id"])
    return SweepResult(await ledger.expire_due(), len(sessions), await ledger.expire_deposits())


def setup_sweeper(app: web.Application, *, interval: float = 5.0) -> None:
    async def sweeper_context(app: web.Application) -> AsyncIterator[None]:
        pool = app[POOL_KEY]
        ledger = Ledger(pool, proposal_ttl_seconds=app[SETTINGS_KEY].proposal_ttl_seconds)

        async def loop() -> None:
            while True:
                try:
                    result = await sweep(pool, ledger)
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

        task = asyncio.get_running_loop().create_task(loop(), name="expiry-sweeper")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(sweeper_context)
