"""Spending questions by voice, against a real `ongea-pesa serve` on real PostgreSQL: answered like the
balance, with the figures of a plain SQL sum, in English and Swahili; a plan without analytics is told in
one sentence that it comes with Pro, and nothing else is said about the money."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from tests.app_api.test_spending import MAMA, NAIROBI, PLAIN, _pay, bounds, month_start
from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.wsclient import Conv, mint
from voice_server.dialogue.wording import money


async def test_a_pro_user_asks_what_they_spent_in_english_and_swahili(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00", plan="pro")
    now = datetime.now(UTC)
    start = month_start(now.astimezone(NAIROBI))
    recent = max(start + timedelta(seconds=1), now - timedelta(minutes=1))
    await _pay(pool, user.user_id, recent, "1200", phone=MAMA)
    await _pay(pool, user.user_id, recent, "300", type_="paybill", paybill="888880", account="A1")
    await _pay(pool, user.user_id, recent, "999", phone=MAMA, status="failed")  # refunded: not spending
    await _pay(pool, user.user_id, start - timedelta(days=3), "700", phone=MAMA)  # last month
    lo, hi, _ = bounds("this_month", now)
    want = await pool.fetchrow(PLAIN, user.user_id, lo, hi)

    conv, _ = await Conv.open((await mint(server.url, user.token))["ws_url"])
    en = await conv.say("how much did I spend this month")
    sw = await conv.say("nimetumia pesa ngapi mwezi huu")
    mama = await conv.say("how much have I sent to Mama this month")
    await conv.close()
    assert en.summary["outcome"] == "answered" and not en.calls("show_proposal")
    assert f"This month you spent {money('en', want['total'])} in {want['n']} payments" in en.said, en.said
    assert f"and {money('en', want['fees'])} in fees." in en.said
    assert "Most of it went to Mary Wambui or 888880." in en.said
    change = want["total"] - 700
    assert f"That is {money('en', change)} more than last month." in en.said
    assert f"Mwezi huu umetumia {money('sw', want['total'])}" in sw.said and sw.summary["language"] == "sw"
    assert f"you paid Mary Wambui {money('en', want['total'] - 300)} in one payment" in mama.said, mama.said
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM transactions WHERE user_id = $1 AND status = 'pending'", user.user_id
        )
        == 0
    )


async def test_a_free_user_who_asks_is_told_the_plan(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    for plan in ("free", "basic"):
        user = await make_user(balance="5000.00", plan=plan)
        await _pay(pool, user.user_id, datetime.now(UTC) - timedelta(minutes=1), "1234", phone=MAMA)
        conv, _ = await Conv.open((await mint(server.url, user.token))["ws_url"])
        turn = await conv.say("how much did I spend this month")
        await conv.close()
        assert turn.said.strip() == "Spending answers come with the Pro plan; you can upgrade in the app.", (
            turn.said
        )
        assert "1,234" not in turn.said
