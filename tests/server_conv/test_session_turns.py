"""Every turn of a voice session is kept by the server (`voice_session_turns`) and read back by its own user
with `GET /v1/sessions/{id}/transcript`: what was heard, what was answered, the card, the tap and the PIN as
markers (never the digits), the outcome. Nobody else reads them; the sweeper removes them after the
retention."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg

from ledger.reads import as_user
from tests.server_conv.conftest import MakeUser, Server, forged_session_tokens
from tests.server_conv.wsclient import Conv, mint
from voice_server.sweeper import sweep

PIN = "4831"


async def _transcript(server: Server, session_id: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/v1/sessions/{session_id}/transcript", headers=headers) as r:
            return r.status, dict(await r.json())


async def _paid_session(server: Server, make_user: MakeUser) -> tuple[Any, dict[str, Any]]:
    """A payment made over the WebSocket: said, tapped, PIN typed."""
    user = await make_user(balance="10000.00", pin=PIN)
    session = await mint(server.url, user.token)
    conv, _greeting = await Conv.open(session["ws_url"])
    asked = await conv.say("send 1500 to mama")
    tapped = await conv.answer(asked.calls("show_proposal")[0]["tool_call_id"], "confirm")
    keypad = tapped.calls("request_pin")
    assert keypad, tapped.events
    await conv.answer(keypad[0]["tool_call_id"], PIN)
    await conv.close()
    return user, session


async def test_a_whole_payment_is_kept_turn_by_turn(server: Server, make_user: MakeUser) -> None:
    user, session = await _paid_session(server, make_user)
    status, body = await _transcript(server, session["session_id"], user.token)
    assert status == 200, server.output()[-3000:]
    turns = body["turns"]
    assert [t["input"] for t in turns] == ["utterance", "tap", "pin"], turns
    assert [t["seq"] for t in turns] == [1, 2, 3]
    said, tap, pin = turns
    assert said["heard"] == "send 1500 to mama" and said["outcome"] == "proposed"
    assert said["proposal"]["amount"] == "1500.00" and said["answered"], said
    assert [c["tool"] for c in said["tool_calls"]] == ["show_proposal"]
    assert tap["tap"] == "confirm" and tap["heard"] is None
    assert "request_pin" in [c["tool"] for c in tap["tool_calls"]]
    assert pin["pin_entered"] is True and pin["heard"] is None and pin["committed"], pin
    assert pin["outcome"] == "committed" and pin["proposal"] is None
    # The PIN is a marker: its digits are nowhere in what is kept or answered.
    assert PIN not in str(body)

    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/openapi.json") as r:
        doc = await r.json()
    assert (
        "/v1/sessions/{session_id}/transcript" in doc["paths"]
        and "TurnRecord" in doc["components"]["schemas"]
    )

    # The session's own token reads it too.
    status, same = await _transcript(server, session["session_id"], session["session_token"])
    assert status == 200 and same["turns"] == turns


async def test_no_one_else_reads_a_session_s_turns(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user, session = await _paid_session(server, make_user)
    other = await make_user()
    other_session = await mint(server.url, other.token)
    status, body = await _transcript(server, session["session_id"], other.token)
    assert status == 404 and body["error"]["code"] == "session_not_found", body
    status, body = await _transcript(server, session["session_id"], other_session["session_token"])
    assert status == 403, body
    status, body = await _transcript(server, session["session_id"], None)
    assert status == 401, body
    for name, forged in forged_session_tokens(user.user_id, session["session_id"]).items():
        status, body = await _transcript(server, session["session_id"], forged)
        assert status == 401, (name, body)
    status, body = await _transcript(server, "x' OR '1'='1", user.token)
    assert status == 404, body
    # Under row level security the other user sees none of the rows, whatever they ask for.
    async with as_user(pool, other.user_id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM voice_session_turns") == 0
    async with as_user(pool, user.user_id) as conn:
        assert await conn.fetchval("SELECT count(*) FROM voice_session_turns") == 3
    # and only the server writes them: not even their owner may change or remove one
    for statement in ("DELETE FROM voice_session_turns", "UPDATE voice_session_turns SET heard = 'x'"):
        async with as_user(pool, user.user_id, readonly=False) as conn:
            try:
                await conn.execute(statement)
            except asyncpg.InsufficientPrivilegeError:
                continue
        raise AssertionError(f"a user could run {statement}")


async def test_the_sweeper_removes_turns_past_their_retention(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    _user, session = await _paid_session(server, make_user)
    _user2, kept = await _paid_session(server, make_user)
    await pool.execute(
        "UPDATE voice_session_turns SET at = now() - interval '31 days' WHERE session_id = $1",
        session["session_id"],
    )
    result = await sweep(pool, turn_retention_days=30)
    assert result.turns_removed >= 3
    left = await pool.fetchval(
        "SELECT count(*) FROM voice_session_turns WHERE session_id = $1", session["session_id"]
    )
    assert left == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM voice_session_turns WHERE session_id = $1", kept["session_id"]
        )
        == 3
    )
