"""Whole conversations against a real `ongea-pesa serve` and real PostgreSQL: the `websockets` client and the
official `elevenlabs` SDK from minting to a paid-out payment, tools alone, a tap and a spoken yes at once,
a disconnect in the middle of a payment, and two server processes sharing one session."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
from elevenlabs.client import ElevenLabs
from elevenlabs.conversational_ai.conversation import ClientTools, Conversation

from tests.server_conv.conftest import METRICS_HEADERS, MakeUser, Server
from tests.server_conv.wsclient import Conv, mint, tool_result
from tests.serving import poll_until


async def _wait_status(
    pool: asyncpg.Pool, transaction_id: str, status: str, wait: float = 20
) -> asyncpg.Record:
    deadline = time.monotonic() + wait
    while True:
        row = await pool.fetchrow("SELECT * FROM transactions WHERE id = $1", uuid.UUID(transaction_id))
        if row is not None and row["status"] == status:
            return row
        assert time.monotonic() < deadline, f"transaction {transaction_id} is {row and row['status']}"
        await asyncio.sleep(0.2)


async def _debits(pool: asyncpg.Pool, transaction_id: str) -> list[Decimal]:
    rows = await pool.fetch(
        "SELECT change_amount FROM balance_history WHERE transaction_id = $1 AND change_amount < 0",
        uuid.UUID(transaction_id),
    )
    return [r["change_amount"] for r in rows]


async def test_websockets_conversation_from_minting_to_completed_payout(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="10000.00", plan="basic", pin="4321")
    session = await mint(server.url, user.token)
    assert session["ws_url"].startswith("ws://") and session["elevenlabs"] is None
    row = await pool.fetchrow("SELECT * FROM voice_sessions WHERE session_id = $1", session["session_id"])
    assert row["user_id"] == user.user_id and row["status"] == "active"
    assert 14 * 60 < (row["expires_at"] - row["created_at"]).total_seconds() <= 15 * 60 + 1

    conv, greeting = await Conv.open(session["ws_url"])
    assert conv.metadata["conversation_id"] == session["session_id"]
    assert greeting.said
    proposed = await conv.say("send 2000 to mama")
    assert proposed.events[0] == {
        "type": "user_transcript",
        "user_transcription_event": {"user_transcript": "send 2000 to mama"},
    }
    assert proposed.summary["outcome"] == "proposed"
    card = proposed.calls("show_proposal")[0]
    assert card["parameters"]["amount"] == "2000.00" and card["parameters"]["phone"] == "254733444555"
    assert "Mary Wambui" in proposed.said

    asked = await conv.say("yes")
    assert asked.summary["asked"] == "pin"
    pin_call = asked.calls("request_pin")[0]
    done = await conv.answer(pin_call["tool_call_id"], "4321")
    assert done.summary["outcome"] == "committed", done.events
    receipt = done.calls("show_receipt")[0]["parameters"]
    transaction_id = str(receipt["transaction_id"])
    await conv.close()

    paid = await _wait_status(pool, transaction_id, "completed")
    assert paid["amount"] == Decimal("2000.00") and paid["voice_verified"] is True
    assert paid["session_id"] == session["session_id"]
    assert (
        await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)
        == Decimal("10000.00") - paid["amount"] - paid["fee"]
    )
    assert sorted(await _debits(pool, transaction_id)) == sorted([-paid["amount"], -paid["fee"]])

    # A new connection to the same session is shown the outcome.
    again, _ = await Conv.open(session["ws_url"])
    shown = []
    try:
        while not shown:
            event = await again.recv(5)
            if (
                event["type"] == "client_tool_call"
                and event["client_tool_call"]["tool_name"] == "show_receipt"
            ):
                shown.append(event["client_tool_call"]["parameters"])
    except TimeoutError:
        pass
    await again.close()
    assert shown, "no receipt on reconnect"
    assert shown[0]["transaction_id"] == transaction_id and shown[0]["status"] == "completed"

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/metrics", headers=METRICS_HEADERS) as r:
            text = await r.text()
    assert 'ongea_turns_total{channel="ws",outcome="committed"}' in text
    assert "ongea_turn_seconds_bucket" in text and "ongea_ws_open_sessions" in text
    # The log is read once it holds the PIN turn's line (so every line of this conversation is in).
    pin_turn = f"turn session={session['session_id']} channel=ws input=PinEntry"
    await poll_until("the PIN turn's log line", lambda: pin_turn in server.output(), wait=30)
    # The PIN is never logged. (As a word of its own: a random port or id can hold the same digits, as
    # 127.0.0.1:43215 once did, and that is not the PIN.)
    assert re.search(r"(?<!\w)4321(?!\w)", server.output()) is None


async def test_a_card_left_open_by_a_dropped_connection_is_shown_again_and_can_be_tapped(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The app loses its connection with a proposal on screen: the new connection reads it back with a new
    card, a tap on that card pays it once, and the old card (of a connection that is gone) changes nothing."""
    user = await make_user(balance="3000.00")
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    proposed = await conv.say("send 500 to mama")
    old_card = proposed.calls("show_proposal")[0]
    await conv.close()

    again, greeting = await Conv.open(session["ws_url"])
    assert greeting.said.startswith("Welcome back") and "Mary Wambui" in greeting.said
    new_card = greeting.calls("show_proposal")[0]
    assert new_card["parameters"]["proposal_id"] == old_card["parameters"]["proposal_id"]
    assert new_card["parameters"]["version"] == old_card["parameters"]["version"]
    assert new_card["tool_call_id"] != old_card["tool_call_id"]

    await again.send(tool_result(old_card["tool_call_id"]))
    refused = await again.recv()
    assert refused["type"] == "error" and refused["error_event"]["code"] == "unknown_tool_call", refused

    done = await again.answer(new_card["tool_call_id"], "confirm")
    assert done.summary["outcome"] == "committed", done.events
    transaction_id = str(done.calls("show_receipt")[0]["parameters"]["transaction_id"])
    await again.send(tool_result(new_card["tool_call_id"]))
    assert (await again.recv())["error_event"]["code"] == "unknown_tool_call"  # one tap per card
    await again.close()

    paid = await _wait_status(pool, transaction_id, "completed")
    assert sorted(await _debits(pool, transaction_id)) == sorted([-paid["amount"], -paid["fee"]])
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", user.user_id) == 1


async def test_official_sdk_conversation_taps_confirm(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The official SDK's Conversation, text only, pointed at this server with the user token as its API key;
    its ClientTools answers show_proposal with "confirm" (a tap), and the payment is paid out in full."""
    user = await make_user(balance="3000.00")
    responses: list[str] = []
    cards: list[dict[str, Any]] = []
    tapped = threading.Event()

    def show_proposal(parameters: dict[str, Any]) -> str:
        cards.append(parameters)
        tapped.set()
        return "confirm"

    def talk() -> str | None:
        tools = ClientTools()
        tools.register("show_proposal", show_proposal)
        client = ElevenLabs(api_key=user.token, base_url=server.url)
        conversation = Conversation(
            client,
            "ongea-pesa",
            requires_auth=True,
            client_tools=tools,
            callback_agent_response=responses.append,
        )
        conversation.start_session()
        try:
            deadline = time.monotonic() + 15
            while not responses and time.monotonic() < deadline:
                time.sleep(0.05)
            assert responses, "no greeting"
            conversation.send_user_message("send 500 to mama")
            assert tapped.wait(15), responses
            deadline = time.monotonic() + 15
            while not any("on its way" in r for r in responses) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            conversation.end_session()
            conversation.wait_for_session_end()
            tools.stop()
        return conversation._conversation_id

    conversation_id = await asyncio.to_thread(talk)
    assert cards[0]["amount"] == "500.00" and cards[0]["tool_call_id"]
    assert any("on its way" in r for r in responses), responses
    # The tap committed it; the payout then completes (bounded wait), and only amount and fee were debited.
    transaction_id = str(cards[0]["proposal_id"])
    paid = await _wait_status(pool, transaction_id, "completed")
    assert paid["amount"] == Decimal("500.00") and paid["voice_verified"] is False  # a tap, not a spoken yes
    assert paid["session_id"] == conversation_id
    assert sorted(await _debits(pool, transaction_id)) == sorted([-paid["amount"], -paid["fee"]])
    assert (
        await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)
        == Decimal("3000.00") - paid["amount"] - paid["fee"]
    )
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", user.user_id) == 1
