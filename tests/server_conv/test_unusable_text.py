"""Text no database can store (a lone UTF-16 surrogate, a NUL), sent as JSON escapes: a clear 400 or `error`
event, nothing stored, the connection and the session unharmed."""

from __future__ import annotations

import json

import asyncpg

from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.wsclient import Conv, mint, tool

UNUSABLE = ("send 500 to \ud800", "send 500 to mama\x00")


async def test_unusable_text_is_refused_on_the_tools_and_the_websocket(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    sid, token = session["session_id"], session["session_token"]
    for text in UNUSABLE:
        for name, body in (
            ("parse_command", {"session_id": sid, "text": text}),
            (
                "propose_transaction",
                {"session_id": sid, "type": "send_phone", "amount": 500, "recipient": text},
            ),
        ):
            status, answer = await tool(server.url, token, name, body)
            assert status == 400 and answer["error"]["code"] == "invalid_request", (name, text, answer)

    conv, _ = await Conv.open(session["ws_url"])
    for text in UNUSABLE:
        await conv.ws.send(json.dumps({"type": "user_message", "text": text}))
        event = await conv.recv()
        assert event["type"] == "error" and event["error_event"]["code"] == "invalid_message", event
    still = await conv.say("send 500 to mama")
    assert still.summary["outcome"] == "proposed", still.events
    await conv.close()
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", user.user_id) == 1
