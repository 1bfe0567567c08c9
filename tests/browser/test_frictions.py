"""Where a person got stuck on the page (issue 24), each as they met it, in Chromium against a real `serve`:
a keypad that outlived its cancelled payment, a Confirm below the fold, a reload that lost the conversation
and brought a closed receipt back, English in a Swahili conversation, an unknown name met with a bare "who?",
and a tap shown as "Confirming…" while nothing could be sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from ledger.models import ProposalRequest
from ledger.service import Ledger
from tests.browser.conftest import PHONE, ServeProcess, Tab, TcpProxy, User, say, sign_in, snap, wait_for
from tests.browser.test_conversation import PAID, card_shows, receipt_shows, transactions, until, wallet

# Every string of the page's own English table (window.ONGEA_STRINGS.en) that differs from its Swahili, as a
# pattern ({placeholders} match anything), looked for in every visible text, placeholder and label.
ENGLISH_ON_PAGE = r"""(() => {
  const { en, sw } = window.ONGEA_STRINGS;
  const escape = (s) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
  const patterns = Object.keys(en)
    .filter((k) => en[k] !== sw[k])
    .map((k) => [k, new RegExp("^" + en[k].split(/\{\w+\}/).map(escape).join(".*") + "$", "s")]);
  const seen = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.getClientRects().length || getComputedStyle(el).visibility === "hidden") continue;
    const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    for (const text of [own, el.getAttribute("placeholder"), el.getAttribute("aria-label")]) {
      if (!text) continue;
      for (const [key, re] of patterns) if (re.test(text.trim())) seen.push(`${key}: ${text.trim()}`);
    }
  }
  return seen;
})()"""

# Inside the viewport, whole, below the sticky top bar.
IN_VIEW = """((id) => {
  const r = document.getElementById(id).getBoundingClientRect();
  const bar = document.querySelector('.topbar').getBoundingClientRect();
  return r.height > 0 && r.top >= bar.bottom - 1 && r.bottom <= window.innerHeight + 1;
})"""


async def _status(pool: asyncpg.Pool, row: asyncpg.Record) -> str:
    status: str = await pool.fetchval("SELECT status FROM transactions WHERE id = $1", row["id"])
    return status


async def _at_pin_step(tab: Tab, pool: asyncpg.Pool, user: User) -> asyncpg.Record:
    await say(tab, "send 1500 to mama")
    row = await card_shows(tab, pool, user, "1500.00", "Mary Wambui")
    await tab.page.get_by_role("button", name="Confirm", exact=True).click()
    await tab.page.locator("#pin").wait_for(state="visible")
    return row


async def test_cancel_at_the_pin_step_closes_the_keypad_whichever_way_it_is_said(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="5000.00", pin="7391")
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)

    # Said (typed) while the keypad is open: the payment and every control of it go.
    row = await _at_pin_step(tab, pool, user)
    await say(tab, "cancel")
    await page.locator("#pin").wait_for(state="hidden")
    assert await page.locator("#proposal").is_hidden()
    assert await _status(pool, row) == "cancelled"
    await page.keyboard.type("7391")  # a PIN typed afterwards goes nowhere and is not "sent"
    assert await page.locator(".msg.note", has_text="PIN sent.").count() == 0
    # The cancelled payment is in the history, marked so, under the contact's name.
    cancelled_row = page.locator("#history-list li[data-status='cancelled']").first
    await cancelled_row.wait_for()
    listed = await cancelled_row.text_content() or ""
    assert "Cancelled" in listed and "Mama" in listed and "KES 1,500.00" in listed, listed

    # The keypad's own Cancel.
    row = await _at_pin_step(tab, pool, user)
    await page.get_by_role("button", name="Cancel payment").click()
    await page.locator("#pin").wait_for(state="hidden")
    await page.locator("#proposal").wait_for(state="hidden")

    async def cancelled() -> bool:
        return await _status(pool, row) == "cancelled"

    await wait_for(cancelled)

    # A new request while the keypad is open replaces the payment: the old keypad goes with it.
    await _at_pin_step(tab, pool, user)
    await say(tab, "send 200 to brayo")
    await page.locator("#p-amount", has_text="KES 200.00").wait_for()
    await card_shows(tab, pool, user, "200.00", "Brian Otieno")
    assert await page.locator("#pin").is_hidden()
    assert await wallet(pool, user) == Decimal("5000.00")


async def test_the_first_card_s_confirm_is_in_view_on_a_phone(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """360 x 780, nobody scrolls: the card (and later the keypad and the receipt) comes into view whole."""
    user = await make_user(balance="5000.00", pin="7391")
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 1500 to mama")
    await card_shows(tab, pool, user, "1500.00", "Mary Wambui")
    await until(page, IN_VIEW + "('proposal')")
    await until(page, IN_VIEW + "('confirm')")
    await page.locator("#confirm").click(no_wait_after=True)
    await page.locator("#pin").wait_for(state="visible")
    await until(page, IN_VIEW + "('pin')")
    await page.keyboard.type("7391")
    await page.keyboard.press("Enter")
    await page.locator("#receipt").wait_for(state="visible")
    await until(page, IN_VIEW + "('receipt')")
    # The conversation itself is scrolled to its last line.
    assert await page.evaluate(
        "(() => { const c = document.getElementById('conversation');"
        " return c.scrollHeight - c.scrollTop - c.clientHeight < 2; })()"
    )


async def test_a_reload_keeps_the_conversation_from_the_server_and_closed_receipts_closed(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="3000.00")
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 300 to mama")
    row = await card_shows(tab, pool, user, "300.00", "Mary Wambui")
    await page.get_by_role("button", name="Confirm", exact=True).click()
    await receipt_shows(tab, pool, user, row["id"])
    await page.get_by_role("button", name="Done").click()
    await say(tab, "what is my balance")
    await page.locator(".msg.agent", has_text="Your balance is").first.wait_for()
    session = await page.evaluate("app.session")

    await page.reload()
    await page.locator("#status[data-state='live']").wait_for()
    # The conversation is this session's turns as the server kept them (not the page's memory of them).
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{served.base}/v1/sessions/{session['session_id']}/transcript",
            headers={"Authorization": f"Bearer {user.token}"},
        ) as r,
    ):
        kept = (await r.json())["turns"]
    # A receipt told when the payout settled is a turn of its own, wherever it fell among the person's.
    person = [t for t in kept if t["input"] != "receipt"]
    assert [t["input"] for t in person] == ["utterance", "tap", "utterance"], kept
    assert [person[0]["heard"], person[2]["heard"]] == ["send 300 to mama", "what is my balance"], kept
    expected: list[str] = []
    for turn in kept:
        if turn["input"] == "utterance":
            expected.append(turn["heard"])
        elif turn["input"] == "tap":
            expected.append("You tapped Confirm.")
        expected += [said for said in turn["answered"] if said]
    shown = await page.evaluate(
        "[...document.querySelectorAll('#conversation .msg:not(.hint-msg)')].map((m) => m.textContent)"
    )
    assert shown[: len(expected)] == expected, shown
    assert any(u.endswith(f"/v1/sessions/{session['session_id']}/transcript") for u in tab.requests)
    # The server sends the session's last receipt to every new connection: the closed one stays closed.
    await page.locator(".msg.agent").last.wait_for()
    await page.wait_for_timeout(1500)
    assert await page.locator("#receipt").is_hidden()
    assert await page.evaluate("app.session.session_id") == session["session_id"]


async def test_a_swahili_conversation_shows_no_english(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """Card, keypad, hints, receipt, history, connection states: all in Swahili, checked against the page's
    own string table; the page follows the conversation into Swahili, and the switch is the person's."""
    user = await make_user(balance="5000.00", pin="7391")
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    assert await page.evaluate(ENGLISH_ON_PAGE + ".length") > 0  # the check sees English when it is there
    await say(tab, "tuma elfu moja mia tano kwa mama")  # spoken in Swahili: the page follows
    await card_shows(tab, pool, user, "1500.00", "Mary Wambui")
    await page.locator("#status[data-state='live']").wait_for()
    assert await page.locator("#language").input_value() == "sw-KE"
    assert await page.evaluate("document.documentElement.lang") == "sw"
    assert await page.evaluate(ENGLISH_ON_PAGE) == []
    await snap(tab, "phone-proposal-sw", full_page=True)

    await page.get_by_role("button", name="Thibitisha", exact=True).click()
    await page.locator("#pin").wait_for(state="visible")
    assert await page.evaluate(ENGLISH_ON_PAGE) == []
    await page.keyboard.type("7391")
    await snap(tab, "phone-pin-sw")
    await page.keyboard.press("Enter")
    await page.locator("#receipt").wait_for(state="visible")
    await page.locator("#history-list li").first.wait_for()
    assert await page.evaluate(ENGLISH_ON_PAGE) == []
    await snap(tab, "phone-receipt-sw", full_page=True)

    # The switch: the person sets English, and the page is English again.
    await page.locator("#language").select_option("en-KE")
    assert await page.get_by_role("button", name="Done").is_visible()
    assert await page.evaluate("document.documentElement.lang") == "en"


async def test_the_persons_choice_of_language_holds_against_a_receipt_told_in_the_old_one(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """The conversation is in Swahili and the person switches the page to English; then a payment settles
    and its receipt is told in the conversation's language. The page stays English until they speak again."""
    user = await make_user(balance="5000.00")
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "salio yangu ni ngapi")
    await until(page, "document.documentElement.lang === 'sw'")
    await page.locator("#language").select_option("en-KE")
    assert await page.evaluate("document.documentElement.lang") == "en"

    told = await page.locator(".msg.agent").count()
    ledger = Ledger(
        pool
    )  # another process pays: its receipt is told in this conversation when M-Pesa has paid
    request = ProposalRequest.build(type="send_phone", amount=Decimal("200"), phone="254722111222")
    proposal = await ledger.propose(user.user_id, request)
    await ledger.confirm(proposal.id, user.user_id, proposal.version, voice_verified=False)

    async def receipt_told() -> bool:
        said = await pool.fetchval(
            "SELECT told_at FROM payout_receipts WHERE transaction_id = $1", proposal.id
        )
        return said is not None and await page.locator(".msg.agent").count() > told

    await wait_for(receipt_told, limit=60)
    receipt = await page.locator(".msg.agent").last.text_content() or ""
    assert "mia mbili" in receipt, receipt  # told in Swahili, the conversation's language
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await page.locator("#language").input_value() == "en-KE"
    # Speaking Swahili again takes the page back to it.
    await say(tab, "salio yangu ni ngapi")
    await until(page, "document.documentElement.lang === 'sw'")


async def test_an_unknown_name_is_named_in_the_answer(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user()
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 500 to Wanjiru")
    answer = page.locator(".msg.agent", has_text="Wanjiru")
    await answer.wait_for()
    text = await answer.text_content() or ""
    assert "contacts" in text and "phone number" in text, text
    await say(tab, "0712345678")
    await page.locator("#proposal").wait_for(state="visible")
    assert "254712345678" in (await page.locator("#p-to").text_content() or "")


async def test_a_tap_while_offline_is_never_shown_as_sent(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    address = urlsplit(served.base)
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 80)
    await proxy.start()
    try:
        user = await make_user(balance="2000.00")
        tab = await open_tab(PHONE)
        page = tab.page
        sent: list[str] = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda frame: sent.append(str(frame))))
        await sign_in(tab, f"http://127.0.0.1:{proxy.port}", user.token)
        await say(tab, "send 300 to brayo")
        row = await card_shows(tab, pool, user, "300.00", "Brian Otieno")
        await page.locator("#status[data-state='live']").wait_for()

        proxy.refuse = True
        proxy.cut()
        await page.locator("#status:not([data-state='live'])").wait_for()
        confirm = page.locator("#confirm")
        await until(page, "document.getElementById('confirm').disabled")
        note = await page.locator("#p-note").text_content() or ""
        assert "offline" in note and "Nothing has been sent" in note, note
        # A tap anyway (a stale touch, a script): nothing is sent and nothing says it was.
        await page.evaluate("document.getElementById('confirm').click()")
        await confirm.press("Enter")
        await page.wait_for_timeout(500)
        assert "Confirming" not in (await page.locator("#p-note").text_content() or "")
        assert not [f for f in sent if "client_tool_result" in f]
        assert await _status(pool, row) == "pending"

        proxy.refuse = False  # the network is back: the page reconnects by itself, the card is live again
        await until(
            page,
            "document.querySelector('#status').dataset.state === 'live' && "
            "!document.getElementById('confirm').disabled",
        )
        await confirm.click()
        done = await receipt_shows(tab, pool, user, row["id"])
        assert done["voice_verified"] is False
        assert len([r for r in await transactions(pool, user) if r["status"] in PAID]) == 1
    finally:
        await proxy.stop()
