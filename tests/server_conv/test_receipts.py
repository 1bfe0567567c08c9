"""Receipts that arrive, against a real `ongea-pesa serve`, its embedded M-Pesa simulator and real
PostgreSQL: a payout that completes while the conversation is open (spoken on Basic, a card alone on Free),
one that completes after the conversation closed (told at the next session's greeting, once), a refused
payout's refund told once, and `GET /v1/transactions/{id}/receipt` in English and Swahili."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg

from tests.server_conv.conftest import MakeUser, Server, User
from tests.server_conv.wsclient import Conv, Turn, mint


def sim_url(server: Server) -> str:
    match = re.search(r"local M-Pesa simulator at (http://\S+)", server.output())
    assert match, server.output()[-2000:]
    return match.group(1)


async def sim_rule(server: Server, amount: int, **behaviour: Any) -> None:
    """How the simulator answers payouts of this amount (amounts are this file's own: tests stay apart)."""
    async with aiohttp.ClientSession() as http:
        rule = {"amount": amount, "behaviour": behaviour}
        async with http.post(f"{sim_url(server)}/simulator/behaviour", json={"rules": [rule]}) as r:
            assert r.status == 200, await r.text()


async def pay(conv: Conv, text: str) -> str:
    """Say a payment and yes; the id of the committed transaction."""
    proposed = await conv.say(text)
    assert proposed.summary["outcome"] == "proposed", proposed.events
    done = await conv.say("yes")
    assert done.summary["outcome"] == "committed", done.events
    return str(done.calls("show_receipt")[0]["parameters"]["transaction_id"])


async def receipt_turn(conv: Conv, wait: float = 45) -> Turn:
    """The next turn that shows a settled receipt (a payout's card with a final status)."""
    deadline = time.monotonic() + wait
    while True:
        turn = await conv.until_turn_end(wait=max(1.0, deadline - time.monotonic()))
        cards = [
            c for c in turn.calls("show_receipt") if c["parameters"]["status"] in ("completed", "failed")
        ]
        if cards:
            return turn
        assert time.monotonic() < deadline, turn.events


async def settled(pool: asyncpg.Pool, transaction_id: str, wait: float = 45) -> asyncpg.Record:
    deadline = time.monotonic() + wait
    while True:
        row = await pool.fetchrow("SELECT * FROM transactions WHERE id = $1", uuid.UUID(transaction_id))
        if row["status"] in ("completed", "failed"):
            return row
        assert time.monotonic() < deadline, dict(row)
        await asyncio.sleep(0.2)


async def balance_of(pool: asyncpg.Pool, user: User) -> Decimal:
    value: Decimal = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)
    return value


async def test_payout_completing_while_open_is_spoken_on_basic_with_the_mpesa_code(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00", plan="basic")
    conv, _ = await Conv.open((await mint(server.url, user.token))["ws_url"])
    tx = await pay(conv, "send 500 to mama")
    turn = await receipt_turn(conv)
    await conv.close()
    row = await settled(pool, tx)
    code = row["mpesa_transaction_id"]
    assert row["status"] == "completed" and code, dict(row)
    card = turn.calls("show_receipt")[-1]["parameters"]
    assert card["transaction_id"] == tx and card["reference"] == code and card["status"] == "completed"
    balance = await balance_of(pool, user)
    assert card["balance"] == f"{balance:.2f}" and balance == Decimal("5000") - 500 - row["fee"]
    fee = f"{row['fee']:,.2f}".removesuffix(".00")
    assert (
        f"Done: KES 500 to Mary Wambui, M-Pesa receipt {code}, fee {fee}, balance {balance:,.0f}."
        in turn.said
    )
    assert (
        await pool.fetchrow(
            "SELECT told_at, told_in FROM payout_receipts WHERE transaction_id = $1", row["id"]
        )
    )["told_at"] is not None

    # The reference people know is M-Pesa's code, in the app's transaction and its receipt.
    async with aiohttp.ClientSession(headers=user.headers) as http:
        async with http.get(f"{server.url}/v1/transactions/{tx}") as r:
            assert (await r.json())["reference"] == code
        async with http.get(f"{server.url}/v1/transactions/{tx}/receipt") as r:
            body = await r.json()
    assert body["reference"] == code and body["status"] == "completed"
    assert f"M-Pesa receipt {code}" in body["text"]["en"] and f"risiti ya M-Pesa {code}" in body["text"]["sw"]
    assert "shilingi mia tano" in body["text"]["sw"]


async def test_free_plan_gets_the_card_but_no_spoken_receipt_while_open(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00", plan="free")
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    tx = await pay(conv, "send 300 to mama")
    turn = await receipt_turn(conv)
    await conv.close()
    row = await settled(pool, tx)
    card = turn.calls("show_receipt")[-1]["parameters"]
    assert card["reference"] == row["mpesa_transaction_id"] != ""
    assert row["mpesa_transaction_id"] in card["text"]  # the card shows the receipt's words
    assert turn.said.strip() == "", turn.said  # nothing is said aloud on the free plan
    # Told once: the next session's greeting does not tell it again.
    conv, greeting = await Conv.open((await mint(server.url, user.token))["ws_url"])
    await conv.close()
    assert row["mpesa_transaction_id"] not in greeting.said and not greeting.calls("show_receipt")
    # A new connection to the session it was paid in shows its card again, with M-Pesa's code.
    conv, _ = await Conv.open(session["ws_url"])
    card = None
    while card is None:
        event = await conv.recv(15)
        if event["type"] == "client_tool_call" and event["client_tool_call"]["tool_name"] == "show_receipt":
            card = event["client_tool_call"]["parameters"]
    await conv.close()
    assert card["transaction_id"] == tx and card["reference"] == row["mpesa_transaction_id"]


async def test_payout_completing_after_the_conversation_closed_is_told_at_the_next_greeting_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    await sim_rule(server, 413, delay=4.0)
    for plan in ("free", "basic"):
        user = await make_user(balance="5000.00", plan=plan)
        session = await mint(server.url, user.token)
        conv, _ = await Conv.open(session["ws_url"])
        tx = await pay(conv, "send 413 to mama")
        await conv.close()
        async with aiohttp.ClientSession(headers=user.headers) as http:
            async with http.delete(f"{server.url}/v1/sessions/{session['session_id']}") as r:
                assert r.status == 200
        row = await settled(pool, tx)
        assert row["status"] == "completed"
        code = row["mpesa_transaction_id"]
        assert (
            await pool.fetchval("SELECT told_at FROM payout_receipts WHERE transaction_id = $1", row["id"])
            is None
        )

        conv, greeting = await Conv.open((await mint(server.url, user.token))["ws_url"])
        await conv.close()
        assert f"M-Pesa receipt {code}" in greeting.said, (plan, greeting.said)  # said on every plan
        assert greeting.calls("show_receipt")[0]["parameters"]["reference"] == code
        conv, again = await Conv.open(
            (await mint(server.url, user.token))["ws_url"], dynamic_variables={"language": "sw"}
        )
        await conv.close()
        assert code not in again.said and not again.calls("show_receipt")


async def test_refused_payout_tells_the_refund_once_in_swahili(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    await sim_rule(server, 617, outcome="fail")
    user = await make_user(balance="5000.00", plan="basic")
    conv, _ = await Conv.open((await mint(server.url, user.token))["ws_url"])
    proposed = await conv.say("tuma mia sita kumi na saba kwa mama")
    assert proposed.summary["outcome"] == "proposed", proposed.events
    done = await conv.say("ndio")
    tx = str(done.calls("show_receipt")[0]["parameters"]["transaction_id"])
    turn = await receipt_turn(conv)
    row = await settled(pool, tx)
    assert row["status"] == "failed"
    assert await balance_of(pool, user) == Decimal("5000.00")  # amount and fee came back
    card = turn.calls("show_receipt")[-1]["parameters"]
    assert card["status"] == "failed" and card["reference"] == ""
    refund = "shilingi mia sita" in turn.said and "zimerudi kwenye pochi yako" in turn.said
    assert refund, turn.said
    # Once: a greeting later says nothing of it.
    balance = await conv.say("salio")
    await conv.close()
    assert "zimerudi" not in balance.said
    conv, greeting = await Conv.open((await mint(server.url, user.token))["ws_url"])
    await conv.close()
    assert "zimerudi" not in greeting.said and "went through" not in greeting.said
    async with aiohttp.ClientSession(headers=user.headers) as http:
        async with http.get(f"{server.url}/v1/transactions/{tx}/receipt") as r:
            body = await r.json()
    assert "did not go through" in body["text"]["en"] and "is back in your wallet" in body["text"]["en"]


async def test_receipt_endpoint_refuses_what_is_not_a_settled_payout_of_yours(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user, other = await make_user(plan="basic"), await make_user(plan="basic")
    conv, _ = await Conv.open((await mint(server.url, user.token))["ws_url"])
    proposed = await conv.say("send 200 to mama")
    await conv.close()
    pending = proposed.summary["proposal"]["proposal_id"]
    async with aiohttp.ClientSession() as http:
        for who, path, status, code in (
            (user, f"/v1/transactions/{pending}/receipt", 409, "not_settled"),
            (other, f"/v1/transactions/{pending}/receipt", 404, "not_found"),  # another user's: not there
            (user, "/v1/transactions/not-a-uuid/receipt", 404, "not_found"),
            (None, f"/v1/transactions/{pending}/receipt", 401, "unauthorized"),
        ):
            headers = who.headers if who is not None else {"Authorization": "Bearer forged.token.here"}
            async with http.get(server.url + path, headers=headers) as r:
                body = await r.json()
                assert (r.status, body["error"]["code"]) == (status, code), path
