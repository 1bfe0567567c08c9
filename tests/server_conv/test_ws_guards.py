"""The WebSocket's guards, against a real server: bad session tokens are closed with 1008 before anything
happens; bad frames get an `error` event and the connection stays usable; huge frames close with 1009 and
floods with 1008."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from tests.server_conv.conftest import MakeUser, Server, forged_session_tokens
from tests.server_conv.wsclient import Conv, mint


async def _closed_with(url: str) -> tuple[int | None, str]:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert msg["type"] != "conversation_initiation_metadata", "a bad token got a conversation"
        return ws.close_code, ws.close_reason or ""


async def test_forged_and_expired_session_tokens_are_closed_1008(server: Server, make_user: MakeUser) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    for what, token in forged_session_tokens(user.user_id, session["session_id"]).items():
        code, _ = await _closed_with(f"{server.ws}/v1/convai/conversation?conversation_signature={token}")
        assert code == 1008, what


async def test_bad_frames_get_errors_and_the_connection_stays_usable(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    try:
        for frame in (
            "{not json",
            "[1,2]",
            '{"type": "launch_missiles"}',
            '{"type": "user_message"}',
            '"hi"',
            '{"type": "user_message", "text": 5}',
            '{"type": "client_tool_result", "tool_call_id": "nope", "result": "confirm"}',
            "[" * 5000 + "]" * 5000,
        ):
            await conv.ws.send(frame)
            event = await conv.recv()
            assert event["type"] == "error", (frame[:40], event)
            assert event["error_event"]["code"] and event["error_event"]["message"]
        await conv.ws.send(b"\x00\x01binary")
        assert (await conv.recv())["type"] == "error"
        turn = await conv.say("what is my balance")
        assert turn.summary["outcome"] in ("answered", "asked", "rejected", "proposed"), turn.events
        assert "10,000" in turn.said or "10000" in turn.said
    finally:
        await conv.close()


async def test_a_frame_over_64_kib_closes_1009(server: Server, make_user: MakeUser) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    await conv.send({"type": "user_message", "text": "x" * (65 * 1024)})
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await conv.recv()
    assert conv.ws.close_code == 1009


async def test_a_flood_closes_1008_and_the_session_lives_on(server: Server, make_user: MakeUser) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    started = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed):
        for _ in range(500):
            await conv.send({"type": "user_activity"})
            await asyncio.sleep(0.005)
        while True:
            await conv.recv()
    assert conv.ws.close_code == 1008 and time.monotonic() - started < 10
    # The session itself is not harmed: a new connection talks.
    again, greeting = await Conv.open(session["ws_url"])
    assert greeting.said
    await again.close()
