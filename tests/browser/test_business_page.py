"""White label (issue 23): a member who opens the page for their business (`/?business=ID`) sees its name and
colour, its wallet, and a read-back that names it; the payment goes from the business wallet."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import asyncpg

from ledger.business import create_business, invite
from ledger.service import Ledger
from tests.browser.conftest import PHONE, Tab, User, say, sign_in
from tests.serving import ServeProcess


async def test_a_member_sees_the_business_name_and_colour_and_pays_from_its_wallet(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = (await create_business(pool, owner.user_id, "Mama Mboga Supplies", "#6a1b9a"))["id"]
    await invite(pool, business, owner.user_id, spender.phone, "spender", Decimal(5000), Decimal(5000))
    ledger = Ledger(pool)
    checkout = "ws_CO_" + uuid.uuid4().hex[:12]
    await ledger.record_topup_request(business, Decimal(8000), "254700000001", checkout, None)
    receipt = "RB" + uuid.uuid4().hex[:8]
    await ledger.credit_topup(checkout, success=True, amount=Decimal(8000), receipt=receipt)

    tab = await open_tab(PHONE)
    await sign_in(tab, served.base, spender.token)
    await tab.page.goto(f"{served.base}/?business={business}")
    page = tab.page
    await page.locator("#app").wait_for(state="visible")
    await page.locator(".topbar h1", has_text="Mama Mboga Supplies").wait_for()
    await page.locator("#balance", has_text="8,000").wait_for()
    colour = await page.evaluate("getComputedStyle(document.querySelector('.topbar')).backgroundColor")
    assert colour == "rgb(106, 27, 154)"
    await say(tab, "send 300 to Mama")
    await page.locator("#proposal").wait_for(state="visible")
    await page.locator("#conversation", has_text="From Mama Mboga Supplies").wait_for()
    await page.get_by_role("button", name="Confirm").click()
    await page.locator("#proposal").wait_for(state="hidden")
    paid = await pool.fetchrow(
        "SELECT user_id, made_by, amount FROM transactions WHERE made_by = $1 AND status <> 'cancelled'",
        spender.user_id,
    )
    assert paid is not None and paid["user_id"] == business and paid["amount"] == Decimal("300.00")
