"""Pings: a client that answers stays, one that stops answering is closed. With an ElevenLabs key and agent,
a session also carries ElevenLabs' signed URL and WebRTC token, fetched with the official SDK (here from a
local stand-in of ElevenLabs' two endpoints, since ElevenLabs cannot be reached from the test machine)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import websockets
from aiohttp import web

from tests.server_conv.conftest import MakeUser, Server, start_server
from tests.server_conv.wsclient import Conv, mint


@pytest.fixture
async def fast_pings(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    srv = await asyncio.to_thread(start_server, database_url, tmp_path, ONGEA_WS_PING_INTERVAL_SECONDS="0.4")
    yield srv
    assert await asyncio.to_thread(srv.stop) == 0


async def test_a_client_that_stops_answering_pings_is_closed(fast_pings: Server, make_user: MakeUser) -> None:
    user = await make_user()
    session = await mint(fast_pings.url, user.token)
    answering, _ = await Conv.open(session["ws_url"])  # Conv.recv answers pings
    # (another session of the same user: a session has one socket, the newest)
    silent = await websockets.connect((await mint(fast_pings.url, user.token))["ws_url"])
    await silent.send(json.dumps({"type": "conversation_initiation_client_data"}))

    async def silent_until_closed() -> int:
        pings = 0
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                event = json.loads(await asyncio.wait_for(silent.recv(), 10))
                pings += event["type"] == "ping"
        return pings

    async def answering_meanwhile() -> None:
        for _ in range(3):
            with pytest.raises(TimeoutError):
                await answering.recv(1.0)  # idle for a second, answering the pings that come
            turn = await answering.say("what is my balance")
            assert turn.said

    pings, _ = await asyncio.gather(silent_until_closed(), answering_meanwhile())
    assert silent.close_code == 1008 and pings >= 1
    await answering.close()


@pytest.fixture
async def elevenlabs_standin() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    async def signed_url(request: web.Request) -> web.Response:
        seen.append(
            {
                "path": request.path,
                "agent_id": request.query.get("agent_id", ""),
                "key": request.headers.get("xi-api-key", ""),
                "from": str(request.transport.get_extra_info("peername") if request.transport else None),
            }
        )
        return web.json_response(
            {
                "signed_url": "wss://api.elevenlabs.io/v1/convai/conversation?agent_id=agent_x&conversation_signature=cs_1"
            }
        )

    async def token(request: web.Request) -> web.Response:
        seen.append(
            {
                "path": request.path,
                "agent_id": request.query.get("agent_id", ""),
                "key": request.headers.get("xi-api-key", ""),
                "from": str(request.transport.get_extra_info("peername") if request.transport else None),
            }
        )
        return web.json_response({"token": "webrtc_token_1"})

    app = web.Application()
    app.router.add_get("/v1/convai/conversation/get-signed-url", signed_url)
    app.router.add_get("/v1/convai/conversation/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_sessions_carry_an_elevenlabs_signed_url_when_configured(
    database_url: str,
    tmp_path: Path,
    make_user: MakeUser,
    pool: asyncpg.Pool,
    elevenlabs_standin: tuple[str, list[dict[str, str]]],
) -> None:
    base, seen = elevenlabs_standin
    srv = await asyncio.to_thread(
        start_server,
        database_url,
        tmp_path,
        ELEVENLABS_API_KEY="sk_test_key",
        ELEVENLABS_AGENT_ID="agent_x",
        ELEVENLABS_BASE_URL=base,
    )
    try:
        user = await make_user()
        session = await mint(srv.url, user.token)
        second = await mint(srv.url, user.token)
        # get-signed-url answers with this server's own URL: it does not ask ElevenLabs for one.
        async with aiohttp.ClientSession() as http:
            url = f"{srv.url}/v1/convai/conversation/get-signed-url?agent_id=agent_x"
            async with http.get(url, headers={"xi-api-key": user.token}) as r:
                assert r.status == 200
                assert (await r.json())["signed_url"].startswith(srv.ws + "/v1/convai/conversation?")
    finally:
        assert await asyncio.to_thread(srv.stop) == 0
    assert session["elevenlabs"] == {
        "agent_id": "agent_x",
        "signed_url": "wss://api.elevenlabs.io/v1/convai/conversation?agent_id=agent_x&conversation_signature=cs_1",
        "conversation_token": "webrtc_token_1",
    }
    assert second["elevenlabs"] == session["elevenlabs"]
    # Two sessions, two calls each, and nothing for get-signed-url.
    assert sorted(s["path"] for s in seen) == [
        "/v1/convai/conversation/get-signed-url",
        "/v1/convai/conversation/get-signed-url",
        "/v1/convai/conversation/token",
        "/v1/convai/conversation/token",
    ]
    # One SDK client for the process: its connection to ElevenLabs is kept and reused, not one per session.
    assert len({s["from"] for s in seen}) == 1
    assert all(s["agent_id"] == "agent_x" and s["key"] == "sk_test_key" for s in seen)
    row = await pool.fetchrow(
        "SELECT agent_id, signed_url FROM voice_sessions WHERE session_id = $1", session["session_id"]
    )
    assert row["agent_id"] == "agent_x" and row["signed_url"] == session["elevenlabs"]["signed_url"]
