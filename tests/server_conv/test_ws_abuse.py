"""The conversation WebSocket under abuse, against real `ongea-pesa serve` processes and PostgreSQL: one live
socket per session (the newest wins, on any process), a per-user cap on open sockets, pongs that count only
when they answer a ping the server sent, sockets closed within seconds of their session ending or expiring,
and a user's flood of turns shed at its source."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import websockets

from tests.server_conv.conftest import MakeUser, Server, start_server
from tests.server_conv.wsclient import Conv, mint


async def _open_raw(url: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url)
    await ws.send(json.dumps({"type": "conversation_initiation_client_data"}))
    return ws


async def _closed(ws: websockets.ClientConnection, wait: float = 60) -> tuple[int | None, str]:
    """Reads (without answering pings) until the server closes, within `wait` seconds in all; its close
    code and reason."""
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(wait):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason or ""


async def _pong(ws: websockets.ClientConnection, ping: dict[str, Any]) -> None:
    await ws.send(json.dumps({"type": "pong", "event_id": ping["ping_event"]["event_id"]}))


async def _is_open(ws: websockets.ClientConnection) -> bool:
    """True when the server still talks on `ws` (it answers a balance question)."""
    await ws.send(json.dumps({"type": "user_message", "text": "what is my balance"}))
    try:
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if event["type"] == "ping":
                await _pong(ws, event)
            if event["type"] == "agent_response" and "turn" in event["agent_response_event"]:
                return True
    except websockets.ConnectionClosed:
        return False


async def test_two_hundred_sockets_on_one_session_token_leave_one_open(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    sockets = await asyncio.gather(*(websockets.connect(session["ws_url"]) for _ in range(200)))
    try:
        # Each one sends its opening frame; the server keeps the newest connection of the session only.
        await asyncio.gather(
            *(ws.send(json.dumps({"type": "conversation_initiation_client_data"})) for ws in sockets)
        )

        async def outcome(ws: websockets.ClientConnection) -> tuple[int | None, str] | None:
            try:
                while True:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if event["type"] == "ping":
                        await _pong(ws, event)
            except TimeoutError:
                return None  # still open, quiet
            except websockets.ConnectionClosed:
                return ws.close_code, ws.close_reason or ""

        outcomes = await asyncio.gather(*(outcome(ws) for ws in sockets))
        still_open = [ws for ws, out in zip(sockets, outcomes, strict=True) if out is None]
        assert len(still_open) == 1, sorted({str(o) for o in outcomes})
        closed = [o for o in outcomes if o is not None]
        assert {o for o in closed} == {(4001, "replaced by a newer connection")}, set(closed)
        assert await _is_open(still_open[0])
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def test_a_newer_connection_replaces_the_older_with_a_clear_close(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    older, _ = await Conv.open(session["ws_url"])
    newer, greeting = await Conv.open(session["ws_url"])
    assert greeting.said
    assert await _closed(older.ws) == (4001, "replaced by a newer connection")
    assert (await newer.say("what is my balance")).said
    await newer.close()


async def test_one_user_holds_a_bounded_number_of_open_sockets(server: Server, make_user: MakeUser) -> None:
    """The default cap is 5 (ONGEA_WS_MAX_SOCKETS_PER_USER): a sixth session's socket is refused; another
    user is not affected, and closing one makes room again."""
    user, other = await make_user(), await make_user()
    sessions = [await mint(server.url, user.token) for _ in range(6)]
    convs = [(await Conv.open(s["ws_url"]))[0] for s in sessions[:5]]
    sixth = await _open_raw(sessions[5]["ws_url"])
    assert await _closed(sixth) == (4029, "too many open conversations for this user")
    theirs, greeting = await Conv.open((await mint(server.url, other.token))["ws_url"])
    assert greeting.said
    await theirs.close()
    await convs[0].close()
    again, greeting = await Conv.open(sessions[5]["ws_url"])
    assert greeting.said
    for conv in [*convs[1:], again]:
        await conv.close()


@pytest.fixture
async def fast_server(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    srv = await asyncio.to_thread(
        start_server,
        database_url,
        tmp_path,
        ONGEA_WS_PING_INTERVAL_SECONDS="0.5",
        ONGEA_WS_SESSION_CHECK_SECONDS="0.5",
    )
    yield srv
    assert await asyncio.to_thread(srv.stop) == 0, srv.output()[-3000:]


async def test_forged_pongs_do_not_keep_a_dead_socket_open(fast_server: Server, make_user: MakeUser) -> None:
    """A client that never reads the server's pings but sends pongs of its own making (ids ahead of any
    ping, huge ids, the first ids a counter would use) is closed as dead."""
    user = await make_user()
    session = await mint(fast_server.url, user.token)
    ws = await _open_raw(session["ws_url"])
    forged = [*range(1, 15), 2**31 - 1, 10**9, 0]

    async def forge() -> None:
        with pytest.raises(websockets.ConnectionClosed):
            for i in range(400):
                await ws.send(json.dumps({"type": "pong", "event_id": forged[i % len(forged)]}))
                await asyncio.sleep(0.1)

    forging = asyncio.get_running_loop().create_task(forge())
    code, reason = await _closed(ws)
    await forging
    assert (code, reason) == (1008, "no pong")


async def test_a_socket_of_an_expired_session_is_closed_within_seconds(
    fast_server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session = await mint(fast_server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    await pool.execute(
        "UPDATE voice_sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1",
        session["session_id"],
    )

    async def answering_pings_until_closed() -> None:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await conv.recv(30)

    await answering_pings_until_closed()
    assert (conv.ws.close_code, conv.ws.close_reason) == (1008, "session expired")


async def _delete(base: str, session: dict[str, Any], headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{base}/v1/sessions/{session['session_id']}", headers=headers) as r:
            assert r.status == 200, await r.text()


async def test_ending_a_session_on_another_process_closes_its_socket_here(
    fast_server: Server, server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(fast_server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    await _delete(server.url, session, user.headers)  # the other process ends it
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await conv.recv(30)
    assert (conv.ws.close_code, conv.ws.close_reason) == (1000, "session ended")


async def test_a_newer_connection_on_another_process_replaces_this_one(
    fast_server: Server, server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(fast_server.url, user.token)
    here, _ = await Conv.open(session["ws_url"])
    there, greeting = await Conv.open(session["ws_url"].replace(fast_server.ws, server.ws))
    assert greeting.said
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await here.recv(30)
    assert (here.ws.close_code, here.ws.close_reason) == (4001, "replaced by a newer connection")
    assert (await there.say("what is my balance")).said
    await there.close()


async def test_a_flood_of_tool_calls_is_shed_with_a_clear_error(server: Server, make_user: MakeUser) -> None:
    """A user's turns wait a bounded number deep (ONGEA_TURNS_WAITING_PER_USER, 16): the rest of a flood is
    answered 429 `busy` at once, and the user's next call after the flood works."""
    user = await make_user()
    session = await mint(server.url, user.token)
    headers = {"Authorization": f"Bearer {session['session_token']}"}
    body = {"session_id": session["session_id"]}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def call() -> tuple[int, Any]:
            async with http.post(f"{server.url}/v1/tools/get_balance", json=body, headers=headers) as r:
                return r.status, await r.json()

        answers = await asyncio.gather(*(call() for _ in range(120)))
        statuses = [s for s, _ in answers]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(429) > 0 and statuses.count(200) >= 16
        busy = next(b for s, b in answers if s == 429)
        assert busy["error"]["code"] == "busy"
        status, after = await call()
        assert status == 200 and "say" in after
