"""The agent's server tools beyond the happy path, against a real server and PostgreSQL: forged and expired
session tokens are refused with server.md's error body and change nothing; `cancel_transaction` voids a
proposal for good; `get_balance` and `recent_transactions` tell what the database holds."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from tests.server_conv.conftest import MakeUser, Server, forged_session_tokens
from tests.server_conv.test_conversation import _debits
from tests.server_conv.test_tools import _wallet
from tests.server_conv.wsclient import Conv, mint, propose_by_tool, tool, tool_result


async def _state(pool: asyncpg.Pool, user_id: uuid.UUID, session_id: str) -> dict[str, Any]:
    """Everything a tool call could change: the wallet, the user's transactions and balance history, and the
    session's stored dialogue."""
    session = await pool.fetchrow(
        "SELECT status, dialogue_state, language, turns, last_turn_at FROM voice_sessions"
        " WHERE session_id = $1",
        session_id,
    )
    return {
        "wallet": await _wallet(pool, user_id),
        "transactions": [
            tuple(r)
            for r in await pool.fetch(
                "SELECT id, status, amount, fee FROM transactions WHERE user_id = $1 ORDER BY id", user_id
            )
        ],
        "history": await pool.fetchval("SELECT count(*) FROM balance_history WHERE user_id = $1", user_id),
        "session": dict(session),
    }


async def test_forged_and_expired_session_tokens_get_401_on_every_tool_and_change_nothing(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """A token not minted by this server for this session (other key, alg none, the user secret, a user token,
    expired, garbage) must not reach the dialogue: not even a confirm of a real pending proposal."""
    user = await make_user(balance="5000.00")
    session = await mint(server.url, user.token)
    sid = session["session_id"]
    status, proposed = await tool(
        server.url,
        session["session_token"],
        "propose_transaction",
        {"session_id": sid, "type": "send_phone", "amount": 700, "recipient": "Mama"},
    )
    assert status == 200 and proposed["outcome"] == "proposed", proposed
    pid, version = proposed["proposal_id"], proposed["version"]
    before = await _state(pool, user.user_id, sid)
    calls: dict[str, dict[str, Any]] = {
        "confirm_transaction": {"session_id": sid, "proposal_id": pid, "version": version},
        "parse_command": {"session_id": sid, "text": "yes"},
        "cancel_transaction": {"session_id": sid, "proposal_id": pid},
        "propose_transaction": {"session_id": sid, "type": "send_phone", "amount": 900, "recipient": "JK"},
        "get_balance": {"session_id": sid},
        "recent_transactions": {"session_id": sid, "limit": 3},
    }
    forgeries = forged_session_tokens(user.user_id, sid)
    assert {"other key", "alg none", "expired", "signed with the user secret"} <= set(forgeries)
    for what, token in forgeries.items():
        for name, body in calls.items():
            status, answer = await tool(server.url, token, name, body)
            assert status == 401, (what, name, answer)
            assert set(answer) == {"error"}, (what, name, answer)
            assert answer["error"]["code"] == "unauthorized" and answer["error"]["message"], (what, answer)
    assert await _state(pool, user.user_id, sid) == before

    # The real token still works on the untouched proposal: it was the tokens that were refused.
    status, done = await tool(
        server.url, session["session_token"], "confirm_transaction", calls["confirm_transaction"]
    )
    assert status == 200 and done["outcome"] == "committed", done


async def test_cancel_transaction_releases_the_hold_and_a_later_confirm_debits_nothing(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The person says no: the agent's cancel voids the proposal and its hold, and a confirm arriving after
    (a late tool call, a stale card) cannot bring it back."""
    user = await make_user(balance="5000.00")
    session = await mint(server.url, user.token)
    token, sid = session["session_token"], session["session_id"]
    proposed = await propose_by_tool(server.url, session, 700, "Mama")
    total = Decimal(proposed["total"])
    assert await _wallet(pool, user.user_id) == (Decimal("5000.00"), total)  # held, not yet debited

    status, cancelled = await tool(
        server.url, token, "cancel_transaction", {"session_id": sid, "proposal_id": proposed["proposal_id"]}
    )
    assert status == 200 and cancelled["outcome"] == "cancelled" and cancelled["say"], cancelled
    pid = uuid.UUID(proposed["proposal_id"])
    assert await pool.fetchval("SELECT status FROM transactions WHERE id = $1", pid) == "cancelled"
    assert await _wallet(pool, user.user_id) == (Decimal("5000.00"), Decimal("0.00"))
    status, balance = await tool(server.url, token, "get_balance", {"session_id": sid})
    assert status == 200 and "5,000" in balance["say"] and "available" not in balance["say"].lower(), balance

    status, late = await tool(
        server.url,
        token,
        "confirm_transaction",
        {"session_id": sid, "proposal_id": proposed["proposal_id"], "version": proposed["version"]},
    )
    assert status == 200 and late["outcome"] != "committed" and "committed" not in late, late
    assert await pool.fetchval("SELECT status FROM transactions WHERE id = $1", pid) == "cancelled"
    assert await _debits(pool, str(pid)) == []
    assert await _wallet(pool, user.user_id) == (Decimal("5000.00"), Decimal("0.00"))


async def test_a_proposal_made_by_voice_and_cancelled_by_the_agent_cannot_be_tapped(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The two channels share one session: a cancel over the tools must also disarm the card the app shows."""
    user = await make_user(balance="5000.00")
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    try:
        card = (await conv.say("send 600 to mama")).calls("show_proposal")[0]
        pid = str(card["parameters"]["proposal_id"])
        status, cancelled = await tool(
            server.url,
            session["session_token"],
            "cancel_transaction",
            {"session_id": session["session_id"], "proposal_id": pid},
        )
        assert status == 200 and cancelled["outcome"] == "cancelled", cancelled
        await conv.send(tool_result(card["tool_call_id"]))
        tapped = await conv.until_turn_end()  # the tap is answered, and refused
        assert tapped.summary["outcome"] == "rejected", tapped.events
        assert tapped.summary["rejected"] == "nothing_to_confirm" and not tapped.calls("show_receipt")
    finally:
        await conv.close()
    assert await pool.fetchval("SELECT status FROM transactions WHERE id = $1", uuid.UUID(pid)) == "cancelled"
    assert await _debits(pool, pid) == []
    assert await _wallet(pool, user.user_id) == (Decimal("5000.00"), Decimal("0.00"))


async def test_get_balance_and_recent_transactions_tell_what_the_database_holds(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The agent speaks these answers: the balance must be the wallet's, and the history must name the
    payment just made, not merely be some sentence."""
    user = await make_user(balance="6543.21")
    session = await mint(server.url, user.token)
    token, sid = session["session_token"], session["session_id"]
    proposed = await propose_by_tool(server.url, session, 950, "JK")
    status, done = await tool(
        server.url,
        token,
        "confirm_transaction",
        {"session_id": sid, "proposal_id": proposed["proposal_id"], "version": proposed["version"]},
    )
    assert status == 200 and done["outcome"] == "committed", done

    wallet, held = await _wallet(pool, user.user_id)
    assert wallet == Decimal("6543.21") - Decimal("950.00") - Decimal(proposed["fee"]) and held == 0
    status, balance = await tool(server.url, token, "get_balance", {"session_id": sid})
    assert status == 200 and balance["outcome"] == "answered", balance
    assert balance["balance"] == f"{wallet:.2f}", (balance, wallet)
    assert f"KES {int(wallet):,}" in balance["say"], balance

    status, recent = await tool(server.url, token, "recent_transactions", {"session_id": sid, "limit": 3})
    assert status == 200 and recent["outcome"] == "answered", recent
    assert "KES 950" in recent["say"] and "John Kamau" in recent["say"], recent
