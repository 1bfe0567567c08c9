"""The sweeper as it runs in production, not `sweep(pool)` called by a test: inside `serve` (nobody connected,
no turn, the session still ends and its hold is released) and as the looping `ongea-pesa sweep`, which must
keep passing over the rows and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg

from ledger.service import Ledger
from tests.server_conv.conftest import MakeUser, start_server
from tests.server_conv.test_sweeper import _expired_session, _send
from tests.server_conv.wsclient import Conv, mint
from tests.serving import poll_until


async def _status(pool: asyncpg.Pool, session_id: str) -> str:
    return str(await pool.fetchval("SELECT status FROM voice_sessions WHERE session_id = $1", session_id))


async def _held(pool: asyncpg.Pool, user_id: uuid.UUID) -> Decimal:
    held: Decimal = await pool.fetchval("SELECT held_balance FROM profiles WHERE id = $1", user_id)
    return held


async def test_serve_expires_a_session_and_cancels_its_proposal_by_itself(
    database_url: str, tmp_path: Path, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    srv = await asyncio.to_thread(start_server, database_url, tmp_path, ONGEA_SWEEP_INTERVAL_SECONDS="0.3")
    try:
        user = await make_user(balance="1500.00")
        session = await mint(srv.url, user.token)
        sid = session["session_id"]
        conv, _ = await Conv.open(session["ws_url"])
        card = (await conv.say("send 100 to mama")).calls("show_proposal")[0]["parameters"]
        await conv.close()
        assert await _held(pool, user.user_id) > 0
        await pool.execute(
            "UPDATE voice_sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1", sid
        )

        async def ended() -> bool:
            return await _status(pool, sid) != "active"

        await poll_until("serve to sweep the expired session", ended, wait=15)
        row = await pool.fetchrow("SELECT status, ended_at FROM voice_sessions WHERE session_id = $1", sid)
        assert row["status"] == "expired" and row["ended_at"] is not None, row
        tx = await pool.fetchval(
            "SELECT status FROM transactions WHERE id = $1", uuid.UUID(str(card["proposal_id"]))
        )
        assert tx == "cancelled"
        assert await _held(pool, user.user_id) == Decimal("0.00")
        await poll_until("the sweeper's log line", lambda: "voice sessions" in srv.output())
        assert "expiry sweep failed" not in srv.output()
    finally:
        assert await asyncio.to_thread(srv.stop) == 0, srv.output()[-3000:]


async def test_sweep_command_loops_and_stops_cleanly_on_sigterm(
    database_url: str, tmp_path: Path, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    ledger = Ledger(pool)
    user = await make_user()
    first = await _expired_session(pool, user.user_id)
    proposal = await ledger.propose(user.user_id, _send("100", first))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONGEA_")}
    env.update(ONGEA_DATA_DIR=str(tmp_path), ONGEA_SWEEP_INTERVAL_SECONDS="0.3", ONGEA_LOG_LEVEL="INFO")
    log_path = tmp_path / "sweep.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - one start; asyncio's subprocess API adds nothing
            [sys.executable, "-m", "voice_server.cli", "sweep", "--database-url", database_url],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        async def swept(session_id: str) -> bool:
            return await _status(pool, session_id) == "expired"

        await poll_until("the first pass", lambda: swept(first))
        assert proc.poll() is None, log_path.read_text()  # it loops; --once would have exited
        assert (
            await pool.fetchval("SELECT status FROM transactions WHERE id = $1", proposal.id) == "cancelled"
        )
        assert await _held(pool, user.user_id) == Decimal("0.00")

        second = await _expired_session(pool, user.user_id)  # due only after the first pass
        await poll_until("a later pass", lambda: swept(second))
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log_path.read_text()
    assert code == 0, out
    assert "Traceback" not in out, out
