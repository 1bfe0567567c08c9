"""Sessions under attack: ended, expired and other people's sessions refused on the WebSocket and the tools
with nothing changed; SQL metacharacters in what is said and in contact names kept verbatim; sessions minted
the ElevenLabs way and ended by DELETE."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import asyncpg
import pytest
import websockets

from tests.server_conv.conftest import SESSION_SECRET, MakeUser, Server
from tests.server_conv.wsclient import Conv, mint, propose_by_tool, tool
from voice_server.session_tokens import mint_session_token


async def _refused_ws(url: str) -> int | None:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert event["type"] != "agent_response", event
        return ws.close_code


async def _state(pool: asyncpg.Pool, user_id: uuid.UUID) -> list[object]:
    profile = await pool.fetchrow("SELECT wallet_balance, held_balance FROM profiles WHERE id = $1", user_id)
    txs = await pool.fetch(
        "SELECT id, status, version, amount FROM transactions WHERE user_id = $1 ORDER BY id", user_id
    )
    return [tuple(profile), [tuple(t) for t in txs]]


async def test_get_signed_url_mints_with_the_user_token_in_xi_api_key(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user()
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/v1/convai/conversation/get-signed-url?agent_id=ongea-pesa"
        async with http.get(url, headers={"xi-api-key": user.token}) as r:
            assert r.status == 200
            signed = (await r.json())["signed_url"]
        async with http.get(url) as r:
            assert r.status == 401
        async with http.get(url, headers={"xi-api-key": "forged"}) as r:
            assert r.status == 401
    assert signed.startswith(
        server.ws + "/v1/convai/conversation?agent_id=ongea-pesa&conversation_signature="
    )
    conv, greeting = await Conv.open(signed)
    assert greeting.said
    await conv.close()


async def test_ended_and_other_users_sessions_are_refused_and_nothing_changes(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    alice, mallory = await make_user(balance="4000.00"), await make_user(balance="100.00")
    session = await mint(server.url, alice.token)
    sid, token = session["session_id"], session["session_token"]
    conv, _ = await Conv.open(session["ws_url"])
    proposed = await conv.say("send 500 to mama")
    p = proposed.calls("show_proposal")[0]["parameters"]
    await conv.close()
    before = await _state(pool, alice.user_id)
    confirm = {"session_id": sid, "proposal_id": p["proposal_id"], "version": p["version"]}

    # Mallory's own genuine session token, used on Alice's session id or proposal.
    own = await mint(server.url, mallory.token)
    status, _ = await tool(server.url, own["session_token"], "confirm_transaction", confirm)
    assert status == 403
    status, answer = await tool(
        server.url, own["session_token"], "confirm_transaction", {**confirm, "session_id": own["session_id"]}
    )
    assert status in (200, 403, 404) and answer.get("outcome") != "committed", answer
    # A token naming Alice's session but Mallory as its user (as if the key had leaked): the driver refuses.
    crossed = mint_session_token(
        SESSION_SECRET, sid, mallory.user_id, datetime.now(UTC) + timedelta(minutes=5)
    )
    assert await _refused_ws(f"{server.ws}/v1/convai/conversation?conversation_signature={crossed}") == 1008
    status, answer = await tool(server.url, crossed, "confirm_transaction", confirm)
    assert status == 403 and answer["error"]["code"] == "session_forbidden"
    # A user token is not a session token (other key, other audience), and one session's token does not
    # end another session.
    status, answer = await tool(server.url, alice.token, "confirm_transaction", confirm)
    assert status == 401
    async with aiohttp.ClientSession() as http:
        bearer = {"Authorization": f"Bearer {own['session_token']}"}
        async with http.delete(f"{server.url}/v1/sessions/{sid}", headers=bearer) as r:
            assert r.status == 401
    # Mallory's user token cannot end Alice's session.
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{server.url}/v1/sessions/{sid}", headers=mallory.headers) as r:
            assert r.status in (403, 404)
    assert await _state(pool, alice.user_id) == before

    # Alice ends the session: the proposal is voided; the token is dead on the WebSocket and the tools.
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{server.url}/v1/sessions/{sid}", headers=alice.headers) as r:
            assert r.status == 200 and (await r.json())["status"] == "ended"
    row = await pool.fetchrow(
        "SELECT status FROM transactions WHERE id = $1", uuid.UUID(str(p["proposal_id"]))
    )
    assert row["status"] == "cancelled"
    assert await pool.fetchval("SELECT held_balance FROM profiles WHERE id = $1", alice.user_id) == 0
    after_end = await _state(pool, alice.user_id)
    assert await _refused_ws(session["ws_url"]) == 1008
    for name, body in (
        ("confirm_transaction", confirm),
        ("parse_command", {"session_id": sid, "text": "send 100 to mama"}),
        (
            "propose_transaction",
            {"session_id": sid, "type": "send_phone", "amount": "100", "recipient": "Mama"},
        ),
    ):
        status, answer = await tool(server.url, token, name, body)
        assert status == 401 and answer["error"]["code"] == "session_ended", (name, answer)
    assert await _state(pool, alice.user_id) == after_end

    # An expired session (past expires_at, not yet swept) is refused the same way.
    expiring = await mint(server.url, alice.token)
    await pool.execute(
        "UPDATE voice_sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1",
        expiring["session_id"],
    )
    status, answer = await tool(
        server.url,
        expiring["session_token"],
        "parse_command",
        {"session_id": expiring["session_id"], "text": "hi"},
    )
    assert status == 401 and answer["error"]["code"] == "session_expired"


async def test_sql_metacharacters_are_kept_verbatim(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    name = "Robert'); DROP TABLE contacts;--"
    user = await make_user(balance="3000.00", contacts=((name, "254711222333", "Bobby"),))
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    said = "send 100 to Bobby"
    proposed = await conv.say(said)
    assert proposed.summary["outcome"] == "proposed", proposed.events
    assert proposed.summary["proposal"]["phone"] == "254711222333"
    assert name in proposed.said or name in json.dumps(proposed.events, ensure_ascii=False)
    weird = "x'; DELETE FROM profiles WHERE ''='"
    odd = await conv.say(weird)
    assert odd.events[0]["user_transcription_event"]["user_transcript"] == weird
    await conv.close()
    row = await pool.fetchrow(
        "SELECT voice_command_text FROM transactions WHERE id = $1",
        uuid.UUID(str(proposed.summary["proposal"]["proposal_id"])),
    )
    assert row["voice_command_text"] == said
    assert await pool.fetchval("SELECT name FROM contacts WHERE user_id = $1", user.user_id) == name
    assert await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id) == Decimal(
        "3000.00"
    )


async def test_one_user_cannot_mint_sessions_without_end(server: Server, make_user: MakeUser) -> None:
    user = await make_user()
    sessions = await asyncio.gather(*(mint(server.url, user.token) for _ in range(50)))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/sessions", headers=user.headers) as r:
            assert r.status == 429 and (await r.json())["error"]["code"] == "too_many_sessions"
        async with http.delete(
            f"{server.url}/v1/sessions/{sessions[0]['session_id']}", headers=user.headers
        ) as r:
            assert r.status == 200
        async with http.post(f"{server.url}/v1/sessions", headers=user.headers) as r:
            assert r.status == 201


async def test_a_session_ends_with_its_own_session_token(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The app (or the agent) holding only the session token can hang up: the session ends, its waiting
    proposal is voided and the hold released, and the token opens nothing afterwards."""
    user = await make_user(balance="1500.00")
    session = await mint(server.url, user.token)
    sid, token = session["session_id"], session["session_token"]
    proposed = await propose_by_tool(server.url, session, "100", "Mama")
    assert await pool.fetchval("SELECT held_balance FROM profiles WHERE id = $1", user.user_id) > 0
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.delete(f"{server.url}/v1/sessions/{sid}", headers=headers) as r:
            assert r.status == 200 and await r.json() == {"session_id": sid, "status": "ended"}
        async with http.delete(f"{server.url}/v1/sessions/{sid}", headers=headers) as r:
            assert r.status == 200 and (await r.json())["status"] == "ended"  # (again: the same answer)
    assert await pool.fetchval("SELECT status FROM voice_sessions WHERE session_id = $1", sid) == "ended"
    proposal_id = uuid.UUID(proposed["proposal_id"])
    assert await pool.fetchval("SELECT status FROM transactions WHERE id = $1", proposal_id) == "cancelled"
    assert await pool.fetchval("SELECT held_balance FROM profiles WHERE id = $1", user.user_id) == 0
    assert await _refused_ws(session["ws_url"]) == 1008
    confirm = {"session_id": sid, "proposal_id": proposed["proposal_id"], "version": proposed["version"]}
    status, answer = await tool(server.url, token, "confirm_transaction", confirm)
    assert status == 401 and answer["error"]["code"] == "session_ended", answer
    assert await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id) == Decimal(
        "1500.00"
    )
