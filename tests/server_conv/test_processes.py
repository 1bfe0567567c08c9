"""More than one process: two servers on one database serve one session turn by turn; SIGTERM finishes the
turns in flight, closes WebSockets with 1001 and exits 0; a disconnect right after a tap still pays once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import websockets

from tests.server_conv.conftest import MakeUser, Server, start_server
from tests.server_conv.wsclient import Conv, mint, tool, tool_result


async def test_two_processes_serve_one_session_turn_by_turn(
    server: Server, database_url: str, tmp_path: Path, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    other = await asyncio.to_thread(start_server, database_url, tmp_path / "second")
    try:
        user = await make_user(balance="6000.00")
        session = await mint(server.url, user.token)
        on_a = session["ws_url"]
        on_b = on_a.replace(server.ws, other.ws)
        assert on_a != on_b

        a, _ = await Conv.open(on_a)
        proposed = await a.say("send 500 to mama")
        assert proposed.summary["outcome"] == "proposed"
        await a.close()
        b, _ = await Conv.open(on_b)
        corrected = await b.say("no, make it 600")
        assert corrected.summary["proposal"]["amount"] == "600.00"
        await b.close()
        a, _ = await Conv.open(on_a)
        done = await a.say("yes")
        assert done.summary["outcome"] == "committed", done.events
        await a.close()
        # And the tools of one process with the WebSocket of the other, alternately.
        status, p = await tool(
            other.url,
            session["session_token"],
            "propose_transaction",
            {"session_id": session["session_id"], "type": "send_phone", "amount": "200", "recipient": "JK"},
        )
        assert status == 200 and p["outcome"] == "proposed"
        b, _ = await Conv.open(on_b)
        yes = await b.say("yes")
        assert yes.summary["outcome"] == "committed"
        await b.close()
        txs = await pool.fetch(
            "SELECT amount, fee, status FROM transactions WHERE user_id = $1 ORDER BY created_at",
            user.user_id,
        )
        assert [t["amount"] for t in txs] == [Decimal("600.00"), Decimal("200.00")]
        assert all(t["status"] in ("processing", "completed") for t in txs)
        assert f"turn session={session['session_id']}" in server.output()
        assert f"turn session={session['session_id']}" in other.output()
    finally:
        assert await asyncio.to_thread(other.stop) == 0


async def test_sigterm_closes_websockets_1001_and_exits_cleanly(
    database_url: str, tmp_path: Path, make_user: MakeUser
) -> None:
    srv = await asyncio.to_thread(start_server, database_url, tmp_path / "term")
    user = await make_user()
    session = await mint(srv.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    srv.proc.send_signal(signal.SIGTERM)
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await conv.recv(10)
    assert conv.ws.close_code == 1001
    assert await asyncio.to_thread(srv.proc.wait, 30) == 0
    assert "no new sessions" in srv.output()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            await http.post(f"{srv.url}/v1/sessions", headers=user.headers)


async def test_a_disconnect_right_after_the_tap_still_pays_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="2000.00")
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    proposed = await conv.say("send 300 to mama")
    card = proposed.calls("show_proposal")[0]
    await conv.send(tool_result(card["tool_call_id"]))
    await conv.ws.close()  # gone before the answer
    transaction_id = uuid.UUID(str(card["parameters"]["proposal_id"]))
    for _ in range(100):
        status = await pool.fetchval("SELECT status FROM transactions WHERE id = $1", transaction_id)
        if status != "pending":
            break
        await asyncio.sleep(0.1)
    assert status in ("processing", "completed")
    again, _ = await Conv.open(session["ws_url"])
    receipt = await again.recv(10)
    assert (
        receipt["type"] == "client_tool_call" and receipt["client_tool_call"]["tool_name"] == "show_receipt"
    )
    assert receipt["client_tool_call"]["parameters"]["transaction_id"] == str(transaction_id)
    await again.close()
    debits = await pool.fetchval(
        "SELECT count(*) FROM balance_history WHERE transaction_id = $1 AND change_amount < 0", transaction_id
    )
    assert debits == 2  # amount and fee, once
