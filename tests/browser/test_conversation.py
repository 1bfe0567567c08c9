"""Whole voice payments through the page, as a person makes them: typed (or spoken) into the page, read back
on the card, confirmed by a tap, a PIN or a spoken yes; the receipt and the new balance on screen, and the
ledger row in the database. The server pings every 2 s here (not 20), and closes a connection whose ping
went unanswered."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    ServeProcess,
    Tab,
    TcpProxy,
    User,
    say,
    sign_in,
    snap,
    wait_for,
)

MAMA = "254733444555"
PAID = ("processing", "completed")


async def until(page: Any, expression: str) -> None:
    """Polls a JavaScript expression (the page's CSP forbids the eval that `wait_for_function` needs)."""

    async def holds() -> bool:
        return bool(await page.evaluate(expression))

    await wait_for(holds)


def kes(value: Decimal) -> str:
    return f"KES {value:,.2f}"


async def wallet(pool: asyncpg.Pool, user: User) -> Decimal:
    value: Decimal = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)
    return value


async def transactions(pool: asyncpg.Pool, user: User) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM transactions WHERE user_id = $1 ORDER BY created_at", user.user_id
    )
    return rows


async def card_shows(tab: Tab, pool: asyncpg.Pool, user: User, amount: str, name: str) -> asyncpg.Record:
    """The card is up and says exactly what the pending ledger row holds."""
    page = tab.page
    await page.locator("#proposal").wait_for(state="visible")
    rows = [r for r in await transactions(pool, user) if r["status"] == "pending"]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["amount"] == Decimal(amount)
    assert await page.locator("#p-amount").text_content() == kes(row["amount"])
    assert await page.locator("#p-fee").text_content() == kes(row["fee"])
    assert await page.locator("#p-total").text_content() == kes(row["amount"] + row["fee"])
    to = await page.locator("#p-to").text_content() or ""
    assert name in to and row["phone"] in to, to
    return row


async def receipt_shows(tab: Tab, pool: asyncpg.Pool, user: User, tx_id: uuid.UUID) -> asyncpg.Record:
    """The receipt names the transaction; the wallet on screen is the wallet in the database."""
    page = tab.page
    await page.locator("#receipt").wait_for(state="visible")
    row = await pool.fetchrow("SELECT * FROM transactions WHERE id = $1", tx_id)
    # Our id until M-Pesa has paid; then M-Pesa's receipt code, the reference people know (feed.js).
    shown = await page.locator("#r-id").text_content()
    code = await pool.fetchval("SELECT mpesa_transaction_id FROM transactions WHERE id = $1", tx_id)
    assert shown in (str(tx_id), code), shown
    assert row is not None and row["status"] in PAID
    money = await wallet(pool, user)
    assert await page.locator("#r-balance").text_content() == kes(money)

    async def balance_is_live() -> bool:
        return await page.locator("#balance").text_content() == kes(money)

    await wait_for(balance_is_live)
    assert await page.locator("#proposal").is_hidden()
    return row


async def test_typed_payment_confirmed_by_a_tap(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="5000.00")
    tab = await open_tab(PHONE)
    await sign_in(tab, served.base, user.token)
    await snap(tab, "phone-start", full_page=True)
    await say(tab, "send 500 to mama")
    row = await card_shows(tab, pool, user, "500.00", "Mary Wambui")
    assert row["phone"] == MAMA
    await snap(tab, "phone-proposal", full_page=True)
    assert await tab.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert await wallet(pool, user) == Decimal("5000.00"), "nothing moves before the tap"

    await tab.page.get_by_role("button", name="Confirm").click()
    done = await receipt_shows(tab, pool, user, row["id"])
    assert done["voice_verified"] is False  # a tap, not a spoken yes
    states = await tab.states()
    assert "connecting" in states and states.index("connecting") < states.index("live"), states
    assert await wallet(pool, user) == Decimal("5000.00") - row["amount"] - row["fee"]
    assert [r["id"] for r in await transactions(pool, user) if r["status"] in PAID] == [row["id"]]
    await snap(tab, "phone-receipt", full_page=True)


# The assistant has answered since the page last sent a PIN.
_ANSWERED_AFTER_PIN = """(() => {
  const all = [...document.querySelectorAll("#conversation .msg")];
  const sent = all.findLastIndex((m) => m.textContent === "PIN sent.");
  return sent >= 0 && all.slice(sent + 1).some((m) => m.classList.contains("agent"));
})()"""


async def test_payment_over_the_pin_threshold_through_the_keypad(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    pin = "7391"
    user = await make_user(balance="5000.00", pin=pin)
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 1500 to mama")
    row = await card_shows(tab, pool, user, "1500.00", "Mary Wambui")
    await page.get_by_role("button", name="Confirm").click()

    keypad = page.locator("#pin")
    await keypad.wait_for(state="visible")
    # A wrong PIN first: nothing moves, and the keypad comes back (one strike of five).
    await page.keyboard.type("1111")
    await page.get_by_role("button", name="Send PIN").click()
    await until(page, _ANSWERED_AFTER_PIN)
    await keypad.wait_for(state="visible")
    assert await page.locator("#pin-dots").text_content() == ""  # empty: no digits, no words in big letters
    assert await wallet(pool, user) == Decimal("5000.00")
    assert await pool.fetchval("SELECT status FROM transactions WHERE id = $1", row["id"]) == "pending"

    await page.get_by_role("button", name="7", exact=True).click()
    await page.get_by_role("button", name="3", exact=True).click()
    await page.keyboard.type("9")  # the keypad takes the keyboard as well
    await page.keyboard.type("1")
    assert await page.locator("#pin-dots").text_content() == "●●●●"
    await snap(tab, "phone-pin")
    assert pin not in await page.content(), "the PIN must never be written to the page"
    assert await wallet(pool, user) == Decimal("5000.00")

    await page.keyboard.press("Enter")  # sends it (the focused key is not pressed again)
    done = await receipt_shows(tab, pool, user, row["id"])
    assert done["amount"] == Decimal("1500.00")
    assert pin not in await page.content()


async def test_spoken_confirmation_instead_of_the_tap(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="3000.00")
    tab = await open_tab(DESKTOP)
    await sign_in(tab, served.base, user.token)
    await say(tab, "tuma mia mbili kwa JK")
    row = await card_shows(tab, pool, user, "200.00", "John Kamau")
    await snap(tab, "desktop-proposal")
    await say(tab, "ndio")
    done = await receipt_shows(tab, pool, user, row["id"])
    assert done["voice_verified"] is True
    await snap(tab, "desktop-receipt")


async def test_a_dropped_connection_reconnects_and_shows_the_outcome(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """The phone's network goes quiet right after the person says yes, then drops: the payment goes through
    on the server; the page reconnects by itself and shows the receipt it never received."""
    address = urlsplit(served.base)
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 80)
    await proxy.start()
    try:
        user = await make_user(balance="2000.00")
        tab = await open_tab(PHONE)
        await sign_in(tab, f"http://127.0.0.1:{proxy.port}", user.token)
        await say(tab, "send 300 to brayo")
        row = await card_shows(tab, pool, user, "300.00", "Brian Otieno")

        proxy.hold()
        await say(tab, "yes")

        async def committed() -> bool:
            status = await pool.fetchval("SELECT status FROM transactions WHERE id = $1", row["id"])
            return status in PAID

        await wait_for(committed)
        assert await tab.page.locator("#receipt").is_hidden(), "the answer should not have got through"
        proxy.cut()

        done = await receipt_shows(tab, pool, user, row["id"])
        assert done["voice_verified"] is True
        states = await tab.states()
        assert "reconnecting" in states, states
        assert await tab.page.locator("#status").get_attribute("data-state") == "live"
        assert len([r for r in await transactions(pool, user) if r["status"] in PAID]) == 1
    finally:
        await proxy.stop()


async def test_an_ended_session_is_shown_and_the_next_message_starts_a_new_one(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="1000.00")
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 100 to mama")
    await page.locator("#proposal").wait_for(state="visible")
    first = await page.evaluate("app.session.session_id")

    # The session is ended elsewhere (another device, or its 15 minutes ran out and the sweeper ended it).
    headers = {"Authorization": f"Bearer {user.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.delete(f"{served.base}/v1/sessions/{first}", headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
    await page.locator("#status[data-state='expired']").wait_for()
    assert await page.locator("#proposal").is_hidden()

    await say(tab, "send 150 to mama")
    await card_shows(tab, pool, user, "150.00", "Mary Wambui")
    assert await page.evaluate("app.session.session_id") != first
    statuses = {r["amount"]: r["status"] for r in await transactions(pool, user)}
    assert statuses[Decimal("100.00")] == "cancelled", "the ended session's proposal is void"


# Stand-ins for the browser's speech engines (Chromium's recognition needs Google's servers; headless has no
# voices): recognition "hears" a fixed sentence while the button is held, synthesis records what it was
# asked to say. What is tested is the page's wiring around them.
_FAKE_SPEECH = """
window.__spoken = [];
window.speechSynthesis.speak = (utterance) => window.__spoken.push([utterance.lang, utterance.text]);
window.__recognitions = [];
window.SpeechRecognition = class {
  start() {
    window.__recognitions.push(this.lang);
    this._heard = setTimeout(() => this.onresult({ results: [[{ transcript: "send 250 to mama" }]] }), 50);
  }
  stop() { setTimeout(() => this.onend(), 20); }
};
"""


async def test_press_and_hold_the_microphone_sends_what_was_heard(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user()
    tab = await open_tab(PHONE, init_script=_FAKE_SPEECH)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await page.get_by_label("Language").select_option("sw-KE")
    # The page is in Swahili now (its own words; see test_language.py): the controls by their Swahili names.
    await page.get_by_role("button", name="Sauti imezimwa").click()
    assert await page.locator("#sound").get_attribute("aria-pressed") == "true"
    mic = page.locator("#mic")
    await mic.hover()
    await page.mouse.down()
    await page.locator("#mic[aria-pressed='true']").wait_for()
    await until(page, "document.getElementById('say-input').value === 'send 250 to mama'")
    await page.mouse.up()
    await card_shows(tab, pool, user, "250.00", "Mary Wambui")
    assert await page.evaluate("window.__recognitions") == ["sw-KE"]
    # Every answer shown is spoken, in the chosen voice language.
    shown, spoken = await page.evaluate(
        "[[...document.querySelectorAll('#conversation .msg.agent')].map((m) => m.textContent),"
        " window.__spoken]"
    )
    assert [text for _, text in spoken] == shown[1:], (spoken, shown)  # [0]: the page's own hint
    # What was heard was English, so the conversation (and the page, and its voice) went on in English.
    assert spoken[-1][0] == "en-KE" and await page.locator("#language").input_value() == "en-KE"
    # Keyboard: Space held on the button does the same.
    await page.get_by_role("button", name="Cancel").click()
    await page.locator("#proposal").wait_for(state="hidden")
    await mic.focus()
    await page.keyboard.down(" ")
    await until(page, "window.__recognitions.length === 2")
    await until(page, "document.getElementById('say-input').value === 'send 250 to mama'")
    await page.keyboard.up(" ")
    await page.locator("#proposal").wait_for(state="visible")


async def test_names_and_words_from_the_server_are_shown_as_text_never_run(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """A contact saved with markup in its name (an address book import, an attacker) is shown literally."""
    user = await make_user()
    evil = '<img src=x onerror="window.__pwned=1">Shiro'
    await pool.execute(
        "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, $2, $3, $4)",
        user.user_id,
        evil,
        "254711222333",
        "Shiro",
    )
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 100 to shiro")
    await page.locator("#proposal").wait_for(state="visible")
    assert evil in (await page.locator("#p-to").text_content() or "")
    assert await page.locator("main img").count() == 0
    assert await page.evaluate("window.__pwned === undefined")


async def test_recent_transactions_listed_where_the_server_has_them_else_left_out(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """With the app API's `GET /v1/transactions` the page lists the latest payments; without it, no list."""
    user = await make_user()
    headers = {"Authorization": f"Bearer {user.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{served.base}/v1/transactions?limit=5", headers=headers) as r,
    ):
        has_history = r.status == 200
    tab = await open_tab(PHONE)
    page = tab.page
    async with page.expect_response(lambda response: "/v1/transactions" in response.url):
        await sign_in(tab, served.base, user.token)
    if not has_history:  # the app API is not on this server: no list, rather than an empty one
        await page.wait_for_timeout(300)  # the page has its answer; let it act on it
        assert await page.locator("#history").is_hidden()
        return
    await page.locator("#history").wait_for(state="visible")
    await say(tab, "send 400 to mama")
    row = await card_shows(tab, pool, user, "400.00", "Mary Wambui")
    await page.get_by_role("button", name="Confirm").click()
    await receipt_shows(tab, pool, user, row["id"])
    first = page.locator("#history-list li").first
    await first.locator(".amount", has_text="KES 400.00").wait_for()
    assert MAMA in (await first.text_content() or "")
    # M-Pesa (the simulator) settles it; the list and the receipt on screen follow.
    await page.locator("#history-list li[data-status='completed']").first.wait_for()
    await page.locator("#r-status", has_text="Completed").wait_for()


async def test_a_yes_after_the_session_expired_pays_nothing_and_the_next_message_starts_afresh(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user(balance="1000.00")
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 100 to mama")
    row = await card_shows(tab, pool, user, "100.00", "Mary Wambui")
    first = await page.evaluate("app.session.session_id")
    # Fifteen minutes pass (the session's clock, not the test's).
    await pool.execute(
        "UPDATE voice_sessions SET expires_at = now() - interval '1 second' WHERE session_id = $1", first
    )
    await say(tab, "yes")
    await page.locator("#status[data-state='expired']").wait_for()
    assert await page.locator("#proposal").is_hidden()
    assert await pool.fetchval("SELECT status FROM transactions WHERE id = $1", row["id"]) == "cancelled"
    assert await wallet(pool, user) == Decimal("1000.00")

    await say(tab, "send 120 to mama")
    await card_shows(tab, pool, user, "120.00", "Mary Wambui")
    assert await page.evaluate("app.session.session_id") != first
    assert await tab.page.locator("#status").get_attribute("data-state") == "live"


async def test_server_pings_are_answered_so_an_idle_page_stays_connected(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
) -> None:
    """The server here pings every 2 s and closes a connection whose ping went unanswered."""
    user = await make_user()
    tab = await open_tab(PHONE)
    page = tab.page
    pongs: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda frame: pongs.append(frame)))
    await sign_in(tab, served.base, user.token)
    await say(tab, "what is my balance")
    await page.locator("#status[data-state='live']").wait_for()
    await page.wait_for_timeout(5_000)  # two and a half ping intervals, idle
    assert await page.locator("#status").get_attribute("data-state") == "live"
    assert not {"reconnecting", "expired"} & set(await tab.states())
    assert sum('"pong"' in str(frame) for frame in pongs) >= 2


async def test_a_page_too_busy_to_answer_a_ping_reconnects_to_the_same_session(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
) -> None:
    """A ping left unanswered (the page busy for 7 s; the server here pings every 2 s) closes the connection,
    not the session: the page reconnects to the same session and the conversation goes on."""
    user = await make_user()
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "what is my balance")
    await page.locator("#status[data-state='live']").wait_for()
    first = await page.evaluate("app.session.session_id")
    await page.evaluate("(() => { const t = Date.now(); while (Date.now() - t < 7000) {} })()")
    await until(page, "(window.__states || []).includes('reconnecting')")
    await page.locator("#status[data-state='live']").wait_for()
    assert await page.evaluate("app.session.session_id") == first
    assert "expired" not in await tab.states()
    answered = await page.locator(".msg.agent").count()
    await say(tab, "what is my balance")
    await until(page, f"document.querySelectorAll('.msg.agent').length > {answered}")
    assert await page.evaluate("app.session.session_id") == first


async def test_a_reload_goes_on_with_the_same_session_and_shows_a_payment_made_meanwhile(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """Sessions are capped per user, so a reload must not mint a new one; and a payment confirmed elsewhere
    (here: by the agent's confirm tool, as an ElevenLabs agent would) shows as a receipt after the reload."""
    user = await make_user()
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 350 to mama")
    row = await card_shows(tab, pool, user, "350.00", "Mary Wambui")
    session = await page.evaluate("app.session")
    body = {"session_id": session["session_id"], "proposal_id": str(row["id"]), "version": row["version"]}
    headers = {"Authorization": f"Bearer {session['session_token']}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{served.base}/v1/tools/confirm_transaction", json=body, headers=headers) as r,
    ):
        assert r.status == 200, await r.text()

    await page.reload()
    await receipt_shows(tab, pool, user, row["id"])
    assert await page.evaluate("app.session.session_id") == session["session_id"]
    assert await pool.fetchval("SELECT count(*) FROM voice_sessions WHERE user_id = $1", user.user_id) == 1


async def test_a_reload_with_a_proposal_open_shows_its_card_again_to_tap(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    user = await make_user()
    tab = await open_tab(PHONE)
    page = tab.page
    await sign_in(tab, served.base, user.token)
    await say(tab, "send 450 to mama")
    row = await card_shows(tab, pool, user, "450.00", "Mary Wambui")
    await page.reload()
    await card_shows(tab, pool, user, "450.00", "Mary Wambui")
    # The conversation is back as the server kept it (test_reload.py), and the new connection's card is live.
    await page.locator(".msg.user", has_text="send 450 to mama").wait_for()
    confirm = page.get_by_role("button", name="Confirm")
    await until(page, "!document.querySelector('#confirm').disabled")
    await confirm.click()
    done = await receipt_shows(tab, pool, user, row["id"])
    assert done["voice_verified"] is False
    assert len([r for r in await transactions(pool, user) if r["status"] in PAID]) == 1


async def test_a_card_open_when_the_connection_drops_can_be_tapped_after_the_reconnect(
    served: ServeProcess,
    open_tab: Callable[..., Awaitable[Tab]],
    make_user: Callable[..., Awaitable[User]],
    pool: asyncpg.Pool,
) -> None:
    """The network drops while the card is on screen: the page reconnects by itself, the card comes back
    live (without the read-back being said again), and one tap pays once."""
    address = urlsplit(served.base)
    proxy = TcpProxy(address.hostname or "127.0.0.1", address.port or 80)
    await proxy.start()
    try:
        user = await make_user(balance="2000.00")
        tab = await open_tab(PHONE)
        page = tab.page
        await sign_in(tab, f"http://127.0.0.1:{proxy.port}", user.token)
        await say(tab, "send 300 to brayo")
        row = await card_shows(tab, pool, user, "300.00", "Brian Otieno")
        readbacks = await page.locator(".msg.agent", has_text="Send KES 300").count()
        assert readbacks == 1
        proxy.cut()

        async def noticed() -> bool:  # before it does, the old card still looks live
            return "reconnecting" in await tab.states()

        await wait_for(noticed)
        await until(
            page,
            "document.querySelector('#status').dataset.state === 'live' && "
            "!document.querySelector('#confirm').disabled",
        )
        assert await page.locator(".msg.agent", has_text="Send KES 300").count() == readbacks
        await page.get_by_role("button", name="Confirm").click()
        done = await receipt_shows(tab, pool, user, row["id"])
        assert done["voice_verified"] is False
        assert len([r for r in await transactions(pool, user) if r["status"] in PAID]) == 1
    finally:
        await proxy.stop()
