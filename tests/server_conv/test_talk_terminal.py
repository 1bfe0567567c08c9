"""`ongea-pesa talk` in a pseudo-terminal, as a person types into it (pexpect), against a real `serve`: "quit"
and a goodbye end it cleanly (no prompt left behind to report the server unreachable), Ctrl-C ends it at once
(even at the hidden PIN prompt), the card says what a person calls the payment, and a receipt still
`processing` is updated to completed when M-Pesa answers, and shown once."""

from __future__ import annotations

import asyncio
import io
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.server_conv.conftest import MakeUser, Server, server_env, start_server

pexpect = pytest.importorskip("pexpect")

WAIT = 60  # generous: the machine is shared; a talk that never gets there fails all the same


def _spawn(server: Server, token: str, tmp_path: Path, *, sigint_ignored: bool = False) -> Any:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "voice_server.cli", "talk", "--server", server.url, "--token", token],
        env=server_env(tmp_path),
        encoding="utf-8",
        timeout=WAIT,
        dimensions=(40, 160),
        # As a shell's background job starts it: SIGINT ignored, which exec keeps (and Python then too).
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
    )
    child.expect("you: ")  # after the greeting
    return child


def _ended(child: Any) -> str:
    """Waits for talk to exit; everything it printed since the last expect."""
    child.expect(pexpect.EOF)
    child.close()
    return str(child.before)


async def _statuses(pool: asyncpg.Pool, user_id: object) -> list[str]:
    rows = await pool.fetch("SELECT status FROM transactions WHERE user_id = $1 ORDER BY created_at", user_id)
    return [r["status"] for r in rows]


async def test_quit_ends_talk_cleanly_and_voids_the_waiting_payment(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    user = await make_user(balance="2000.00")
    child = _spawn(server, user.token, tmp_path)
    child.sendline("send 200 to mama")
    child.expect("Send money")  # the words a person uses, not the type name
    card = str(child.before) + str(child.after)
    child.expect("you: ")
    assert "send_phone" not in card + str(child.before)
    child.sendline("quit")
    tail = _ended(child)
    assert child.exitstatus == 0, tail
    assert "cannot reach" not in tail and "Traceback" not in tail and "you: " not in tail, tail
    assert await _statuses(pool, user.user_id) == ["cancelled"]


async def test_a_goodbye_ends_talk_after_the_assistant_s_answer(
    server: Server, make_user: MakeUser, tmp_path: Path
) -> None:
    user = await make_user()
    child = _spawn(server, user.token, tmp_path)
    child.sendline("goodbye")
    child.expect("Goodbye")
    tail = _ended(child)
    assert child.exitstatus == 0, tail
    assert "you: " not in tail and "cannot reach" not in tail and "[connection closed" not in tail, tail


@pytest.mark.parametrize("where", ["prompt", "pin", "prompt, started with SIGINT ignored"])
async def test_ctrl_c_exits_at_once(server: Server, make_user: MakeUser, tmp_path: Path, where: str) -> None:
    user = await make_user(balance="5000.00", pin="4831")
    child = _spawn(server, user.token, tmp_path, sigint_ignored="ignored" in where)
    if where == "pin":
        child.sendline("send 1500 to mama")
        child.expect("you: ")
        child.sendline("c")
        child.expect("PIN \\(hidden\\): ")
    child.sendintr()
    tail = _ended(child)
    assert child.exitstatus == 130 or child.signalstatus is not None, (child.exitstatus, tail)
    assert "Traceback" not in tail, tail


async def test_a_processing_receipt_is_updated_to_completed(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    user = await make_user(balance="2000.00")
    child = _spawn(server, user.token, tmp_path)
    seen = io.StringIO()
    child.logfile_read = seen  # everything talk prints from here on
    child.sendline("send 300 to mama")
    child.expect("you: ")
    child.sendline("c")
    child.expect(r"\[receipt\] (sent, M-Pesa is confirming|completed)")
    if "completed" not in str(child.after):
        child.expect(r"\[receipt\] completed\s+balance (\S+)")
    balance = child.match.group(1) if child.match.lastindex else None

    async def settled() -> bool:
        return await _statuses(pool, user.user_id) == ["completed"]

    for _ in range(WAIT * 10):
        if await settled():
            break
        await asyncio.sleep(0.1)
    assert await settled()
    if balance is not None:
        wallet = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)
        assert balance == f"{wallet:.2f}"
    await asyncio.sleep(5)  # past the fallback watch's grace: a second receipt would be printed by now
    child.sendline("quit")
    _ended(child)
    # The server pushes the settled receipt and talk also follows the payment: the person sees it once.
    assert len(re.findall(r"\[receipt\] completed", seen.getvalue())) == 1, seen.getvalue()


async def test_a_websocket_announced_where_talk_cannot_reach_names_it_and_ongea_public_url(
    database_url: str, make_user: MakeUser, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nothing listens on, as a production https:// URL is from a laptop
        s.bind(("127.0.0.1", 0))
        public = f"http://127.0.0.1:{s.getsockname()[1]}"
    srv = start_server(database_url, tmp_path / "srv", ONGEA_PUBLIC_URL=public)
    try:
        user = await make_user()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voice_server.cli", "talk", "--server", srv.url, "--token", user.token,
            env=server_env(tmp_path), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), timeout=WAIT)
    finally:
        assert srv.stop() == 0, srv.output()[-3000:]
    text = err.decode()
    assert proc.returncode == 1, text
    ws = public.replace("http://", "ws://", 1)
    assert f"talk: cannot open the conversation WebSocket {ws}/v1/convai/conversation" in text, text
    assert "ONGEA_PUBLIC_URL" in text and "Traceback" not in text, text
    assert "conversation_signature" not in text, text  # the session token stays out of the message
