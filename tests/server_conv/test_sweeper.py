"""The sweeper, run by several processes at once: every expired session and stale proposal is ended exactly
once, holds are released, and a row a live turn holds is skipped, never waited for."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal

import asyncpg

from ledger.invariants import check_invariants
from ledger.models import ProposalRequest, TransactionType
from ledger.service import Ledger
from tests.server_conv.conftest import MakeUser
from tests.serving import poll_until
from voice_server.sweeper import sweep


async def _expired_session(pool: asyncpg.Pool, user_id: uuid.UUID) -> str:
    session_id = f"sess_{uuid.uuid4().hex}"
    await pool.execute(
        """INSERT INTO voice_sessions (user_id, session_id, agent_id, expires_at)
           VALUES ($1, $2, 'ongea-pesa', now() - interval '1 minute')""",
        user_id,
        session_id,
    )
    return session_id


def _send(amount: str, session_id: str | None = None) -> ProposalRequest:
    return ProposalRequest(
        type=TransactionType.SEND_PHONE, amount=Decimal(amount), phone="254733444555", session_id=session_id
    )


async def test_concurrent_sweeps_end_each_row_once(make_user: MakeUser, pool: asyncpg.Pool) -> None:
    ledger = Ledger(pool)
    short = Ledger(pool, proposal_ttl_seconds=1)
    users = [await make_user() for _ in range(12)]
    sessions, loose = [], []
    for user in users:
        session_id = await _expired_session(pool, user.user_id)
        sessions.append(session_id)
        await ledger.propose(user.user_id, _send("100", session_id))
        loose.append((await short.propose(user.user_id, _send("50"))).id)

    async def stale() -> bool:  # by the database's clock, the one the sweeper reads
        return bool(
            await pool.fetchval(
                "SELECT bool_and(expires_at <= now()) FROM transactions WHERE id = ANY($1::uuid[])", loose
            )
        )

    await poll_until("the short-lived proposals to be past their expiry", stale, wait=30)

    results = await asyncio.gather(*(sweep(pool, batch=3) for _ in range(4)))
    assert sum(r.sessions_expired for r in results) >= len(sessions)
    # A row one sweeper held while another looked at it was skipped, not waited for: a later pass takes it.
    await sweep(pool)
    mine = await pool.fetch(
        "SELECT status, ended_at FROM voice_sessions WHERE session_id = ANY($1::text[])", sessions
    )
    assert {r["status"] for r in mine} == {"expired"} and all(r["ended_at"] for r in mine)
    statuses = await pool.fetch(
        "SELECT status, error_message, count(*) AS n FROM transactions WHERE user_id = ANY($1::uuid[]) "
        "GROUP BY status, error_message",
        [u.user_id for u in users],
    )
    assert all(r["status"] == "cancelled" for r in statuses), statuses
    reasons = {r["error_message"]: r["n"] for r in statuses}
    assert sum(reasons.values()) == 24, reasons
    held = await pool.fetch(
        "SELECT held_balance FROM profiles WHERE id = ANY($1::uuid[])", [u.user_id for u in users]
    )
    assert {r["held_balance"] for r in held} == {Decimal("0.00")}
    assert await check_invariants(pool, [u.user_id for u in users]) == []


async def test_a_session_held_by_a_turn_is_skipped_not_waited_for(
    make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session_id = await _expired_session(pool, user.user_id)
    async with pool.acquire() as turn:
        tx = turn.transaction()
        await tx.start()
        await turn.execute("SELECT 1 FROM voice_sessions WHERE session_id = $1 FOR UPDATE", session_id)
        await asyncio.wait_for(sweep(pool), timeout=10)  # returns although the row is locked
        assert (
            await pool.fetchval("SELECT status FROM voice_sessions WHERE session_id = $1", session_id)
            == "active"
        )
        await tx.rollback()
    await sweep(pool)
    assert (
        await pool.fetchval("SELECT status FROM voice_sessions WHERE session_id = $1", session_id)
        == "expired"
    )


async def test_sweep_command_once(
    make_user: MakeUser, pool: asyncpg.Pool, database_url: str, tmp_path: object
) -> None:
    user = await make_user()
    session_id = await _expired_session(pool, user.user_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONGEA_")}
    env["ONGEA_DATA_DIR"] = str(tmp_path)
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "voice_server.cli", "sweep", "--once", "--database-url", database_url],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["sessions_expired"] >= 1
    assert (
        await pool.fetchval("SELECT status FROM voice_sessions WHERE session_id = $1", session_id)
        == "expired"
    )
