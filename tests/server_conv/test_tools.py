"""The agent's server tools over HTTP with the session token, on the same session state as the WebSocket."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg

from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.wsclient import Conv, mint, tool


async def _wallet(pool: asyncpg.Pool, user_id: uuid.UUID) -> tuple[Decimal, Decimal]:
    row = await pool.fetchrow("SELECT wallet_balance, held_balance FROM profiles WHERE id = $1", user_id)
    return row["wallet_balance"], row["held_balance"]


async def test_tools_alone_propose_and_confirm(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00")
    session = await mint(server.url, user.token)
    token, sid = session["session_token"], session["session_id"]

    status, proposed = await tool(
        server.url,
        token,
        "propose_transaction",
        {"session_id": sid, "type": "send_phone", "amount": 700, "recipient": "Mama"},
    )
    assert status == 200, proposed
    assert proposed["outcome"] == "proposed" and proposed["say"]
    assert proposed["amount"] == "700.00" and proposed["phone"] == "254733444555"
    assert proposed["status"] == "pending" and isinstance(proposed["version"], int)
    assert Decimal(proposed["total"]) == Decimal(proposed["amount"]) + Decimal(proposed["fee"])

    # A correction through parse_command (same engine as the WebSocket); the wrapped body form.
    status, revised = await tool(
        server.url,
        token,
        "parse_command",
        {
            "tool_call_id": "call_1",
            "tool_name": "parse_command",
            "conversation_id": "conv_x",
            "parameters": {"session_id": sid, "text": "no, make it 800"},
        },
    )
    assert status == 200, revised
    assert revised["amount"] == "800.00" and revised["version"] == proposed["version"] + 1

    # The old version is refused and nothing moves.
    status, stale = await tool(
        server.url,
        token,
        "confirm_transaction",
        {"session_id": sid, "proposal_id": proposed["proposal_id"], "version": proposed["version"]},
    )
    assert status == 200 and stale["outcome"] != "committed", stale
    assert (await _wallet(pool, user.user_id))[0] == Decimal("5000.00")

    status, done = await tool(
        server.url,
        token,
        "confirm_transaction",
        {"session_id": sid, "proposal_id": revised["proposal_id"], "version": revised["version"]},
    )
    assert status == 200 and done["outcome"] == "committed", done
    row = await pool.fetchrow("SELECT * FROM transactions WHERE id = $1", uuid.UUID(revised["proposal_id"]))
    assert row["amount"] == Decimal("800.00") and row["voice_verified"] is True
    wallet, held = await _wallet(pool, user.user_id)
    assert wallet == Decimal("5000.00") - row["amount"] - row["fee"] and held == 0

    status, balance = await tool(server.url, token, "get_balance", {"session_id": sid})
    assert status == 200 and balance["say"]
    status, recent = await tool(server.url, token, "recent_transactions", {"session_id": sid, "limit": "3"})
    assert status == 200 and recent["say"]


async def test_bad_tool_input_is_a_clear_400_and_changes_nothing(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00")
    session = await mint(server.url, user.token)
    token, sid = session["session_token"], session["session_id"]
    bad = {
        "propose_transaction": [
            {"session_id": sid, "type": "send_phone", "amount": "abc", "recipient": "Mama"},
            {"session_id": sid, "type": "send_phone", "amount": True, "recipient": "Mama"},
            {"session_id": sid, "type": "send_phone", "amount": "NaN", "recipient": "Mama"},
            {"session_id": sid, "type": "steal", "amount": "5"},
            {"session_id": sid, "amount": "5"},
            [1, 2],
        ],
        "confirm_transaction": [
            {"session_id": sid, "proposal_id": "not-a-uuid", "version": 1},
            {"session_id": sid, "proposal_id": str(uuid.uuid4()), "version": "one"},
        ],
        "parse_command": [{"session_id": sid, "text": ""}, {"session_id": sid, "text": "x" * 5000}],
    }
    for name, bodies in bad.items():
        for body in bodies:
            status, answer = await tool(server.url, token, name, body)  # type: ignore[arg-type]
            assert status == 400, (name, body, answer)
            assert answer["error"]["code"] in ("invalid_request", "invalid_amount"), answer
    status, answer = await tool(server.url, token, "no_such_tool", {"session_id": sid})
    assert status == 404
    # A negative amount is understood and refused by the dialogue, with a sentence to say.
    status, answer = await tool(
        server.url,
        token,
        "propose_transaction",
        {"session_id": sid, "type": "send_phone", "amount": "-5", "recipient": "Mama"},
    )
    assert status == 200 and answer["outcome"] in ("rejected", "asked"), answer
    assert answer["say"]
    assert await _wallet(pool, user.user_id) == (Decimal("5000.00"), Decimal("0.00"))
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", user.user_id) == 0


async def test_a_tap_and_a_spoken_yes_at_the_same_moment_debit_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="9000.00")
    session = await mint(server.url, user.token)
    for _ in range(3):
        app, _ = await Conv.open(session["ws_url"])
        proposed = await app.say("send 500 to mama")
        card = proposed.calls("show_proposal")[0]
        p = card["parameters"]
        # The app's tap, the agent's confirm tool (a spoken yes heard by ElevenLabs), a typed "yes": at once.
        results = await asyncio.gather(
            app.answer(card["tool_call_id"], "confirm"),
            tool(
                server.url,
                session["session_token"],
                "confirm_transaction",
                {
                    "session_id": session["session_id"],
                    "proposal_id": p["proposal_id"],
                    "version": p["version"],
                },
            ),
            tool(  # (a session has one socket: the spoken yes comes through parse_command)
                server.url,
                session["session_token"],
                "parse_command",
                {"session_id": session["session_id"], "text": "yes"},
            ),
        )
        outcomes = [results[0].summary["outcome"], results[1][1]["outcome"], results[2][1]["outcome"]]
        assert outcomes.count("committed") == 1, outcomes
        row = await pool.fetchrow(
            "SELECT * FROM transactions WHERE id = $1", uuid.UUID(str(p["proposal_id"]))
        )
        assert row["status"] in ("processing", "completed")
        debits = await pool.fetch(
            "SELECT change_amount FROM balance_history WHERE transaction_id = $1 AND change_amount < 0",
            row["id"],
        )
        assert sorted(r["change_amount"] for r in debits) == sorted([-row["amount"], -row["fee"]])
        await app.close()
    txs = await pool.fetch("SELECT amount, fee, status FROM transactions WHERE user_id = $1", user.user_id)
    assert len(txs) == 3
    wallet, held = await _wallet(pool, user.user_id)
    assert wallet == Decimal("9000.00") - sum(t["amount"] + t["fee"] for t in txs) and held == 0
