"""Outside attack on the card shown again on reconnect, against a real `ongea-pesa serve` and PostgreSQL: a
tap on a connection racing its replacement's tap on the card shown again, a stale card of a revised
proposal, and a payment that needs the PIN answered through the re-shown card without it."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from tests.server_conv import conftest as conv_fixtures
from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.wsclient import Conv, mint, tool_result

# The real server and its users, as tests/server_conv has them.
server = conv_fixtures.server
make_user = conv_fixtures.make_user


async def _debits(pool: asyncpg.Pool, user_id: uuid.UUID) -> int:
    count: int = await pool.fetchval(
        """SELECT count(*) FROM balance_history b JOIN transactions t ON t.id = b.transaction_id
           WHERE t.user_id = $1 AND b.change_amount < 0""",
        user_id,
    )
    return count


async def _settle(pool: asyncpg.Pool, user_id: uuid.UUID) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = await pool.fetchval(
            "SELECT count(*) FROM transactions WHERE user_id = $1 AND status = 'processing'", user_id
        )
        if not busy:
            return
        await asyncio.sleep(0.2)


async def test_a_tap_racing_a_reconnection_and_its_re_shown_card_pays_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """A session has one live socket (a newer connection replaces the older), so the race left is the old
    connection's tap leaving as the phone reconnects, and the new connection tapping the card shown again."""
    user = await make_user(balance="3000.00")
    session = await mint(server.url, user.token)
    first, _ = await Conv.open(session["ws_url"])
    old = (await first.say("send 500 to mama")).calls("show_proposal")[0]
    await first.send(tool_result(old["tool_call_id"], "confirm"))
    second, greeting = await Conv.open(session["ws_url"])  # replaces the first
    for card in greeting.calls("show_proposal"):
        await second.answer(card["tool_call_id"], "confirm")
    await first.close()
    await second.close()
    await _settle(pool, user.user_id)
    paid = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE user_id = $1 AND status IN ('processing', 'completed')",
        user.user_id,
    )
    assert paid == 1
    assert await _debits(pool, user.user_id) == 2  # the amount and the fee, once


async def test_a_re_shown_card_of_an_older_version_cannot_confirm_the_revised_proposal(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="3000.00")
    session = await mint(server.url, user.token)
    first, _ = await Conv.open(session["ws_url"])
    await first.say("send 500 to mama")
    second, greeting = await Conv.open(session["ws_url"])
    stale = greeting.calls("show_proposal")[0]  # version 1, shown again
    revised = await second.say("no, make it 700")
    assert revised.calls("show_proposal")[0]["parameters"]["version"] == stale["parameters"]["version"] + 1
    refused = await second.answer(stale["tool_call_id"], "confirm")
    assert refused.summary.get("outcome") != "committed", refused.events
    await first.close()
    await second.close()
    assert await _debits(pool, user.user_id) == 0  # no money moved
    statuses = await pool.fetch("SELECT status FROM transactions WHERE user_id = $1", user.user_id)
    assert all(r["status"] not in ("processing", "completed") for r in statuses), statuses


async def test_the_re_shown_card_of_a_payment_awaiting_its_pin_does_not_pay_without_it(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="10000.00", pin="4321")
    session = await mint(server.url, user.token)
    first, _ = await Conv.open(session["ws_url"])
    await first.say("send 2000 to mama")
    assert (await first.say("yes")).summary["asked"] == "pin"
    await first.close()
    again, greeting = await Conv.open(session["ws_url"])
    card = greeting.calls("show_proposal")[0]
    assert greeting.calls("request_pin")
    tapped = await again.answer(card["tool_call_id"], "confirm")
    assert tapped.summary.get("outcome") != "committed" and tapped.summary.get("asked") == "pin", (
        tapped.events
    )
    spoken = await again.say("yes")
    assert spoken.summary.get("outcome") != "committed"
    wrong = await again.answer(tapped.calls("request_pin")[0]["tool_call_id"], "1111")
    assert wrong.summary.get("outcome") != "committed"
    await again.close()
    assert await _debits(pool, user.user_id) == 0  # no money moved
    statuses = await pool.fetch("SELECT status FROM transactions WHERE user_id = $1", user.user_id)
    assert all(r["status"] not in ("processing", "completed") for r in statuses), statuses
