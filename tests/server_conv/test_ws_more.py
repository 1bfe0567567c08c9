"""The WebSocket beyond the happy path, against a real server and PostgreSQL: asking the balance updates the
app's balance with the wallet's real figure, and a message sent while a confirmation is still being handled
(the person talks over the agent) is answered without the payment committing twice."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.test_conversation import _debits
from tests.server_conv.test_tools import _wallet
from tests.server_conv.wsclient import Conv, mint, tool_result


async def test_asking_the_balance_sends_a_balance_update_with_the_wallets_balance(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The app redraws its balance from `balance_update`: it must carry the wallet's figure after a payment,
    in English and in Swahili."""
    user = await make_user(balance="4321.50")
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    try:
        card = (await conv.say("send 300 to mama")).calls("show_proposal")[0]
        assert (await conv.answer(card["tool_call_id"], "confirm")).summary["outcome"] == "committed"
        wallet, _ = await _wallet(pool, user.user_id)
        assert wallet < Decimal("4321.50")

        english = await conv.say("what is my balance")
        updates = english.calls("balance_update")
        assert len(updates) == 1, english.events
        assert updates[0]["parameters"] == {"balance": f"{wallet:.2f}"}
        assert english.summary["balance"] == f"{wallet:.2f}" and f"KES {int(wallet):,}" in english.said

        swahili = await conv.say("angalia salio")
        assert swahili.summary["language"] == "sw" and "shilingi" in swahili.said, swahili.events
        assert [c["parameters"] for c in swahili.calls("balance_update")] == [{"balance": f"{wallet:.2f}"}]
    finally:
        await conv.close()


@pytest.mark.parametrize("confirm_by", ["tap", "yes"])
async def test_a_message_right_after_the_confirmation_is_answered_and_the_payment_commits_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, confirm_by: str
) -> None:
    """The confirming tap or "yes" and, before its answer, the next request on the same socket: the first
    commits exactly once and the second gets its own answer (a new proposal), in that order."""
    user = await make_user(balance="5000.00")
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    try:
        card = (await conv.say("send 500 to mama")).calls("show_proposal")[0]
        pid = str(card["parameters"]["proposal_id"])
        # Hold the session row (as a slow turn would) so the second message surely arrives mid-confirmation.
        async with pool.acquire() as db, db.transaction():
            await db.execute(
                "SELECT 1 FROM voice_sessions WHERE session_id = $1 FOR UPDATE", session["session_id"]
            )
            if confirm_by == "tap":
                await conv.send(tool_result(card["tool_call_id"]))
            else:
                await conv.send({"type": "user_message", "text": "yes"})
            await conv.send({"type": "user_message", "text": "send 200 to JK"})
            await asyncio.sleep(0.3)
            assert (
                await db.fetchval("SELECT status FROM transactions WHERE id = $1", uuid.UUID(pid))
                == "pending"
            )
        first = await conv.until_turn_end()
        second = await conv.until_turn_end()
    finally:
        await conv.close()

    assert first.summary["outcome"] == "committed", first.events
    heard = {"type": "user_transcript", "user_transcription_event": {"user_transcript": "send 200 to JK"}}
    assert heard in first.events  # the second message was heard while the first was being handled
    assert str(first.calls("show_receipt")[0]["parameters"]["transaction_id"]) == pid
    assert second.summary["outcome"] == "proposed", second.events
    new_card = second.calls("show_proposal")[0]["parameters"]
    assert new_card["amount"] == "200.00" and new_card["phone"] == "254722111222"
    assert new_card["proposal_id"] != pid and "John Kamau" in second.said

    row = await pool.fetchrow("SELECT * FROM transactions WHERE id = $1", uuid.UUID(pid))
    assert row["status"] in ("processing", "completed") and row["amount"] == Decimal("500.00")
    assert sorted(await _debits(pool, pid)) == sorted([-row["amount"], -row["fee"]])
    # One commit in all: the user's only debits are this payment's amount and fee.
    debits = await pool.fetch(
        "SELECT change_amount FROM balance_history WHERE user_id = $1 AND change_amount < 0", user.user_id
    )
    assert sorted(r["change_amount"] for r in debits) == sorted([-row["amount"], -row["fee"]])
    # Besides the payment (processing or, once M-Pesa answers, completed: read above), only the new proposal.
    others = await pool.fetch(
        "SELECT status FROM transactions WHERE user_id = $1 AND id <> $2", user.user_id, uuid.UUID(pid)
    )
    assert [r["status"] for r in others] == ["pending"]
    wallet, held = await _wallet(pool, user.user_id)
    assert wallet == Decimal("5000.00") - row["amount"] - row["fee"]
    assert held == Decimal(new_card["total"])  # only the new proposal is held
