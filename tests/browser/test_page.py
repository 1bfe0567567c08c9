"""The page itself: served by `ongea-pesa serve`, self-contained, labelled, fit for a 360 px phone; and the
demo-user route, which exists only on the embedded development defaults."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import Error as PlaywrightError

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    ServeProcess,
    Tab,
    User,
    scratch_dir,
    serve_env,
    sign_in,
)
from voice_server.app import create_app
from voice_server.page_routes import DEMO_ROUTE, demo_available
from voice_server.settings import Settings

# Every control a person can reach has a name a screen reader can say.
_UNLABELLED = """
() => [...document.querySelectorAll("button, input, select, textarea")]
  .filter((el) => {
    const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
      || (el.labels && el.labels.length) || (el.tagName === "BUTTON" && el.textContent.trim());
    return !named;
  })
  .map((el) => el.outerHTML.slice(0, 80))
"""


def same_origin(tab: Tab, base: str) -> list[str]:
    return [url for url in tab.requests if not url.startswith(base + "/") and not url.startswith("data:")]


async def test_page_is_served_self_contained_labelled_and_fits_a_phone(
    served: ServeProcess, open_tab: Callable[..., Awaitable[Tab]], make_user: Callable[..., Awaitable[User]]
) -> None:
    tab = await open_tab(PHONE)
    response = await tab.page.goto(served.base + "/")
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = tab.page
    await page.get_by_label("Your user token").wait_for()
    # The server runs on a DATABASE_URL: no demo button (the route does not exist).
    assert await page.locator("#demo").is_hidden()
    assert await page.evaluate(_UNLABELLED) == []

    user = await make_user()
    await sign_in(tab, served.base, user.token)
    assert await page.evaluate(_UNLABELLED) == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for name in ("Hold to talk", "Send", "Sign out"):
        await page.get_by_role("button", name=name).wait_for()
    # The token is kept: a reload does not ask again.
    await page.reload()
    await page.locator("#app").wait_for(state="visible")
    assert await page.locator("#signin").is_hidden()
    assert same_origin(tab, served.base) == [], "the page fetched something from another site"

    # Keyboard: Tab reaches the text box and the hold-to-talk button, in that order, from the top.
    await page.keyboard.press("Tab")
    reached = []
    for _ in range(12):
        reached.append(await page.evaluate("document.activeElement.id"))
        await page.keyboard.press("Tab")
    assert "say-input" in reached and "mic" in reached
    assert reached.index("say-input") < reached.index("mic")


async def test_signing_out_forgets_the_token_and_a_bad_token_is_turned_away(
    served: ServeProcess, open_tab: Callable[..., Awaitable[Tab]], make_user: Callable[..., Awaitable[User]]
) -> None:
    tab = await open_tab(DESKTOP)
    await tab.page.goto(served.base + "/")
    await tab.page.get_by_label("Your user token").fill("not-a-token")
    await tab.page.get_by_role("button", name="Sign in").click()
    # Refused as soon as the server is asked (GET /v1/me where it exists, else the first message).
    if await tab.page.locator("#app").is_visible():
        # (unless the page has turned the token away already, which it may do at any moment now)
        with contextlib.suppress(PlaywrightError):
            await tab.page.locator("#say-input").fill("send 100 to mama", timeout=2000)
            await tab.page.get_by_role("button", name="Send", exact=True).click(timeout=2000)
    await tab.page.locator("#signin").wait_for(state="visible")
    assert "not accepted" in (await tab.page.locator("#signin-error").text_content() or "")
    assert await tab.page.evaluate("localStorage.getItem('ongea.userToken')") is None

    user = await make_user()
    await sign_in(tab, served.base, user.token)
    await tab.page.get_by_role("button", name="Sign out").click()
    await tab.page.locator("#signin").wait_for(state="visible")
    assert await tab.page.evaluate("localStorage.getItem('ongea.userToken')") is None


async def test_demo_route_does_not_exist_with_a_database_url(served: ServeProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for method in ("GET", "POST"):
            async with http.request(method, served.base + DEMO_ROUTE) as r:
                assert r.status == 404, await r.text()
                assert (await r.json())["error"]["code"] == "not_found"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def app_with(pool: asyncpg.Pool, **overrides: Any) -> AsyncIterator[str]:
    """The application built with these settings (embedded defaults unless overridden), served over real
    HTTP on a free port, on the test database either way; yields the demo route's URL."""
    settings = Settings().model_copy(
        update={
            "data_dir": scratch_dir(),
            "database_url": None,
            "daraja_consumer_key": None,
            "daraja_consumer_secret": None,
            **overrides,
        }
    )
    runner = web.AppRunner(create_app(settings, pool))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}{DEMO_ROUTE}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"database_url": None}, (200, 201)),
        ({"database_url": "postgresql://somewhere/db"}, (404, 404)),
        ({"database_url": None, "daraja_consumer_key": "k", "daraja_consumer_secret": "s"}, (404, 404)),
    ],
    ids=["embedded-defaults", "database-url", "daraja-credentials"],
)
async def test_demo_route_exists_only_on_embedded_defaults(
    pool: asyncpg.Pool, overrides: dict[str, Any], expected: tuple[int, int]
) -> None:
    """The route is decided by the settings alone (the app here runs on the test database either way)."""
    unset = {"database_url": None, "daraja_consumer_key": None, "daraja_consumer_secret": None}
    settings = Settings().model_copy(update={**unset, **overrides})
    assert demo_available(settings) == (expected[0] == 200)
    async with app_with(pool, **overrides) as url, aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            got = r.status
        async with http.post(url, json={}) as r:
            posted = r.status
            if posted == 201:
                made = await r.json()
                assert Decimal(made["balance"]) > 0 and made["pin"] and len(made["contacts"]) >= 3
    assert (got, posted) == expected


async def test_embedded_defaults_offer_a_demo_user(
    open_tab: Callable[..., Awaitable[Tab]],
) -> None:
    """Right after the Quick start's `serve` (no DATABASE_URL, no Daraja credentials): one click to try it."""
    server = await asyncio.to_thread(ServeProcess, [], serve_env(scratch_dir() / "data"), limit=180)
    try:
        tab = await open_tab(PHONE)
        await tab.page.goto(server.base + "/")
        # The offer says the demo PIN before anyone presses it.
        await tab.page.locator("#demo-hint", has_text="PIN 2580").wait_for()
        await tab.page.get_by_role("button", name="Try it as a demo user").click()
        await tab.page.locator("#app").wait_for(state="visible")
        assert await tab.page.locator("#balance").text_content() == "KES 10,000.00"
        note = await tab.page.locator("#demo-note").text_content() or ""
        assert "PIN" in note and "Mama" in note
        # And the Quick start's promise: pay by typing, right away, on the embedded database.
        await tab.page.get_by_label("Type what you would say").fill("send 500 to mama")
        await tab.page.get_by_label("Type what you would say").press("Enter")
        await tab.page.get_by_role("button", name="Confirm").click()
        await tab.page.locator("#receipt").wait_for(state="visible")
        # (The live feed may still bring the wallet's earlier rows first: the balance settles on the debit.)
        await tab.page.locator("#balance", has_text="KES 9,495.00").wait_for()  # basic plan: 1% fee
        assert await tab.page.locator("#balance").text_content() == "KES 9,495.00"
        assert same_origin(tab, server.base) == []
    finally:
        assert await asyncio.to_thread(server.stop) == 0, server.log()


async def test_static_files_stay_inside_their_folder(served: ServeProcess) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(served.base + "/static/app.js") as r:
            assert r.status == 200
            assert "client_tool_result" in await r.text()
        for path in ("/static/../page_routes.py", "/static/%2e%2e/page_routes.py", "/static/..%2fapp.py"):
            async with http.get(served.base + path) as r:
                assert r.status in (403, 404), path
                assert "import" not in await r.text()


async def test_demo_users_are_capped_per_process(pool: asyncpg.Pool) -> None:
    """Even on a developer's machine, an unauthenticated route that writes rows has a ceiling."""
    async with app_with(pool, demo_users_per_process=1) as url, aiohttp.ClientSession() as http:
        async with http.post(url, json={}) as r:
            assert r.status == 201
        async with http.post(url, json={}) as r:
            assert r.status == 429
            assert (await r.json())["error"]["code"] == "too_many_demo_users"


async def test_another_site_cannot_make_demo_users(pool: asyncpg.Pool) -> None:
    """A form post or a no-preflight fetch from another page open in the developer's browser: 415, no user."""
    before = await pool.fetchval("SELECT count(*) FROM profiles")
    async with app_with(pool) as url, aiohttp.ClientSession() as http:
        for body, kind in (("", "text/plain"), ("a=1", "application/x-www-form-urlencoded")):
            headers = {"Content-Type": kind, "Origin": "http://evil.example"}
            async with http.post(url, data=body, headers=headers) as r:
                assert r.status == 415
                assert "access-control-allow-origin" not in r.headers
    assert await pool.fetchval("SELECT count(*) FROM profiles") == before
