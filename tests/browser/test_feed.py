"""The page's live feed (static/feed.js): the balance on screen follows a change made by another process
through `GET /v1/events` (no reload, no timer), and a paid receipt shows M-Pesa's code as its reference."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg

from ledger.models import ProposalRequest
from ledger.service import Ledger
from tests.browser.conftest import PHONE, ServeProcess, Tab, User, say, sign_in, wait_for


def kes(value: Decimal) -> str:
    return f"KES {value:,.2f}"


async def test_the_balance_and_the_receipt_follow_the_feed(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="5000.00")
    tab = await open_tab(PHONE)
    page: Any = tab.page
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/v1/events") else None)
    await sign_in(tab, served.base, user.token)

    async def feed_live() -> bool:
        return bool(await page.evaluate("Boolean(window.OngeaFeed && window.OngeaFeed.live)"))

    await wait_for(feed_live)
    assert streams, "the page opened no event stream"

    # Another process moves money: the page shows it without being asked.
    ledger = Ledger(pool)
    request = ProposalRequest.build(type="send_phone", amount=Decimal("700"), phone="254722111222")
    proposal = await ledger.propose(user.user_id, request)
    await ledger.confirm(proposal.id, user.user_id, proposal.version, voice_verified=False)
    after: Decimal = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)

    async def balance_is(value: Decimal) -> bool:
        return await page.locator("#balance").text_content() == kes(value)

    await wait_for(lambda: balance_is(after))

    async def paid_out() -> bool:  # (its receipt is then told at the conversation's greeting)
        return (
            await pool.fetchval("SELECT status FROM transactions WHERE id = $1", proposal.id) == "completed"
        )

    await wait_for(paid_out, limit=60)

    # A voice payment: once M-Pesa has paid, the receipt's reference is M-Pesa's code, not our id.
    await say(tab, "send 500 to mama")
    await page.locator("#proposal").wait_for(state="visible")
    await page.get_by_role("button", name="Confirm").click()
    await page.locator("#receipt").wait_for(state="visible")
    tx_id = await pool.fetchval(
        "SELECT id FROM transactions WHERE user_id = $1 AND amount = 500 AND status <> 'pending'",
        user.user_id,
    )

    async def settled() -> bool:
        return bool(await pool.fetchval("SELECT mpesa_transaction_id FROM transactions WHERE id = $1", tx_id))

    await wait_for(settled, limit=60)  # M-Pesa paid (the server's payout worker) ...
    code = await pool.fetchval("SELECT mpesa_transaction_id FROM transactions WHERE id = $1", tx_id)

    async def code_shown() -> bool:
        return await page.locator("#r-id").text_content() == code

    await wait_for(code_shown)  # ... and the feed brought its code to the page
    assert await page.locator("#r-status").text_content() in ("completed", "Completed", "Paid")
    await asyncio.sleep(0)


async def test_an_answer_overtaken_by_the_feed_never_puts_an_older_balance_back(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """Before: a `GET /v1/me` that left before a payment and came back after the feed had shown the newer
    balance put the older one back, and it stayed (no later event came to correct it). A slow network, or a
    busy server as in a CI run, is all it takes."""
    user = await make_user(balance="5000.00")
    tab = await open_tab(PHONE)
    page: Any = tab.page
    await sign_in(tab, served.base, user.token)

    async def feed_live() -> bool:
        return bool(await page.evaluate("Boolean(window.OngeaFeed && window.OngeaFeed.live)"))

    async def balance_is(value: Decimal) -> bool:
        return await page.locator("#balance").text_content() == kes(value)

    await wait_for(feed_live)
    await wait_for(lambda: balance_is(Decimal("5000.00")))

    # The next `GET /v1/me` is answered by the server now (the balance before the payment) and reaches the
    # page only when the test lets it; every later one goes through at once.
    fetched, release, handled = asyncio.Event(), asyncio.Event(), asyncio.Event()
    held: list[bool] = []

    async def slow(route: Any) -> None:
        if held:
            await route.continue_()
            return
        held.append(True)
        answer = await route.fetch()
        fetched.set()
        await release.wait()
        await route.fulfill(response=answer)
        handled.set()

    await page.route("**/v1/me", slow)
    await page.evaluate("() => { refreshWallet(); }")
    await asyncio.wait_for(fetched.wait(), 30)

    ledger = Ledger(pool)
    request = ProposalRequest.build(type="send_phone", amount=Decimal("700"), phone="254722111222")
    proposal = await ledger.propose(user.user_id, request)
    await ledger.confirm(proposal.id, user.user_id, proposal.version, voice_verified=False)
    after: Decimal = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)
    assert after < Decimal("5000.00")
    await wait_for(lambda: balance_is(after))  # the feed brought it

    # The old answer arrives last; the page goes on to the history list once it has read it.
    history = asyncio.Event()
    page.on("request", lambda r: history.set() if "/v1/transactions?limit=5" in r.url else None)
    await asyncio.sleep(1)  # the refreshes the feed's events started are done: only the held answer is left
    history.clear()
    release.set()
    await asyncio.wait_for(handled.wait(), 30)
    await asyncio.wait_for(history.wait(), 30)
    assert await page.locator("#balance").text_content() == kes(after)
