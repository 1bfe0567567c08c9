"""The page measured for accessibility: axe-core (bundled by axe-playwright-python) on every state a person
meets (sign-in, talking, card, keypad, receipt, history, offline) finds no serious or critical violation;
and a whole payment is made with the keyboard alone, from the sign-in form to the receipt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.browser.conftest import DESKTOP, PHONE, ServeProcess, Tab, TcpProxy, User, say, sign_in
from tests.browser.test_conversation import card_shows, receipt_shows, until

SERIOUS = ("serious", "critical")


async def audit(tab: Tab, state: str) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now, one line each."""
    axe_module = pytest.importorskip("axe_playwright_python.async_playwright")
    results = await axe_module.Axe().run(tab.page)
    found: list[str] = []
    for violation in results.response["violations"]:
        if violation["impact"] in SERIOUS:
            targets = [n["target"] for n in violation["nodes"]]
            found.append(
                f"{state}: {violation['id']} ({violation['impact']}) {violation['help']} at {targets}"
            )
    return found


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_every_state_of_the_page_has_no_serious_violation(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
    viewport: dict[str, int],
) -> None:
    address = urlsplit(served.base)
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 80)
    await proxy.start()
    try:
        user = await make_user(balance="5000.00", pin="7391")
        tab = await open_tab(viewport)
        page = tab.page
        base = f"http://127.0.0.1:{proxy.port}"
        found: list[str] = []
        await page.goto(base + "/")
        await page.locator("#signin").wait_for(state="visible")
        found += await audit(tab, "sign-in")

        await sign_in(tab, base, user.token)
        await say(tab, "what is my balance")
        await page.locator(".msg.agent", has_text="Your balance").wait_for()
        found += await audit(tab, "talking")

        await say(tab, "send 1500 to mama")
        row = await card_shows(tab, pool, user, "1500.00", "Mary Wambui")
        found += await audit(tab, "card")

        await page.get_by_role("button", name="Confirm", exact=True).click()
        await page.locator("#pin").wait_for(state="visible")
        await page.keyboard.type("73")
        found += await audit(tab, "keypad")

        await page.keyboard.type("91")
        await page.keyboard.press("Enter")
        await receipt_shows(tab, pool, user, row["id"])
        found += await audit(tab, "receipt")

        await page.get_by_role("button", name="Done").click()
        await page.locator("#history-list li[data-status]").first.wait_for()
        found += await audit(tab, "history")

        await say(tab, "send 200 to brayo")
        await card_shows(tab, pool, user, "200.00", "Brian Otieno")
        proxy.refuse = True
        proxy.cut()
        await until(page, "document.getElementById('confirm').disabled")
        found += await audit(tab, "offline")

        assert found == [], "\n".join(found)
    finally:
        await proxy.stop()


async def _tab_to(page: Any, selector: str, limit: int = 40) -> None:
    """Presses Tab (only) until `selector` has the focus, as a keyboard user would."""
    for _ in range(limit):
        if await page.evaluate(f"document.activeElement === document.querySelector({selector!r})"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with Tab")


async def test_a_whole_payment_with_the_keyboard_alone(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="5000.00", pin="7391")
    tab = await open_tab(DESKTOP)
    page = tab.page
    await page.goto(served.base + "/")
    await page.locator("#signin").wait_for(state="visible")
    await _tab_to(page, "#token-input")
    await page.keyboard.insert_text(user.token)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # Sign in
    await page.locator("#app").wait_for(state="visible")

    await _tab_to(page, "#say-input")
    await page.keyboard.type("send 1500 to mama")
    await page.keyboard.press("Enter")
    row = await card_shows(tab, pool, user, "1500.00", "Mary Wambui")
    await _tab_to(page, "#confirm")
    await page.keyboard.press("Enter")
    await page.locator("#pin").wait_for(state="visible")
    # The keypad takes the focus and the digits from the keyboard.
    await until(page, "document.getElementById('pin').contains(document.activeElement)")
    await page.keyboard.type("7391")
    await page.keyboard.press("Enter")
    done = await receipt_shows(tab, pool, user, row["id"])
    assert done["amount"] == Decimal("1500.00")
    await _tab_to(page, "#receipt-close")
    await page.keyboard.press("Enter")
    await page.locator("#receipt").wait_for(state="hidden")
