"""Browser tests: Debian's Chromium, driven by Playwright, against a real `ongea-pesa serve` process on a free
port and the run's real PostgreSQL.

Playwright cannot download browsers here, so it launches `/usr/bin/chromium` (`apt-get install chromium`);
without it every test that needs the browser is skipped with that reason. Screenshots go to pytest's
scratch folder, or to `docs/screenshots/` when `UPDATE_SCREENSHOTS=1`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ledger.users import create_user
from tests.serving import ServeProcess, SharedServes, shared_serve
from voice_server.auth import mint_user_token

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 860}
REPO = Path(__file__).resolve().parents[2]
JWT_SECRET = "browser-test-jwt-" + uuid.uuid4().hex
CONTACTS = (
    ("Mary Wambui", "254733444555", "Mama"),
    ("John Kamau", "254722111222", "JK"),
    ("Brian Otieno", "254701234567", "Brayo"),
)
_phones = itertools.count(random.Random().randrange(0, 1_000_000) * 10)

# Not pytest's tmp_path: with several runs at once on this machine, pytest prunes the others' old tmp folders,
# which would pull a server's data (and its session-token key) from under it.
_SCRATCH = Path(tempfile.mkdtemp(prefix="ongea-browser-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def scratch_dir() -> Path:
    """A fresh folder of this run's own, removed when the run ends."""
    return Path(tempfile.mkdtemp(dir=_SCRATCH))


def fresh_phone() -> str:
    return f"25411{next(_phones) % 10_000_000:07d}"


def serve_env(data_dir: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    clean.pop("DATABASE_URL", None)
    return {
        **clean,
        "ONGEA_DATA_DIR": str(data_dir),
        "ONGEA_JWT_SECRET": JWT_SECRET,
        "ONGEA_LOG_LEVEL": "INFO",
        # Pings every 2 s (not 20): a page that stopped answering them would be cut off within a test.
        "ONGEA_WS_PING_INTERVAL_SECONDS": "2",
        **extra,
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A browser test that fails shows what its server printed meanwhile (the page's side is in the test)."""
    outcome = yield
    report = outcome.get_result()
    served = getattr(item, "funcargs", {}).get("served")
    if report.when == "call" and report.failed and isinstance(served, ServeProcess):
        report.sections.append(("what the server printed during the test", served.output()[-6000:]))


@pytest.fixture
@shared_serve("browser")
def served(shared_serves: SharedServes, database_url: str) -> ServeProcess:
    """The server on the run's database (so, as with any DATABASE_URL, without the demo route), shared by
    the browser tests (`SharedServes`: stopped, and it must exit cleanly, once a test that does not use it
    comes, or at the end)."""
    return shared_serves.get(
        "browser", lambda: ServeProcess(["--database-url", database_url], serve_env(scratch_dir() / "data"))
    )


@dataclass
class User:
    user_id: uuid.UUID
    phone: str
    token: str
    pin: str | None


@pytest.fixture
def make_user(pool: asyncpg.Pool) -> Callable[..., Awaitable[User]]:
    """A user as a developer makes one (`ledger.users.create_user`, as `ongea-pesa user add` does), with the
    contacts Mama, JK and Brayo, and the user token they would paste into the page."""

    async def make(balance: str = "5000.00", plan: str = "basic", pin: str | None = None) -> User:
        new = await create_user(pool, fresh_phone(), balance=Decimal(balance), plan=plan, pin=pin)
        await pool.executemany(
            "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, $2, $3, $4)",
            [(new.user_id, n, p, k) for n, p, k in CONTACTS],
        )
        token = mint_user_token(JWT_SECRET, new.user_id, ttl_seconds=3600)
        return User(new.user_id, new.phone, token, pin)

    return make


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium): browser tests skipped")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    pw = await async_playwright().start()
    chromium = None
    try:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
    finally:
        # Bounded: a full run hung 300 s in a worker's last teardown, in the worker that held Playwright.
        with contextlib.suppress(TimeoutError):
            if chromium is not None:
                await asyncio.wait_for(chromium.close(), 30)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pw.stop(), 30)


@dataclass
class Tab:
    """One page in its own browser context, with every URL it requested."""

    page: Any
    context: Any
    requests: list[str] = field(default_factory=list)

    async def states(self) -> list[str]:
        """Every connection state the top bar went through (recorded by the init script below)."""
        states: list[str] = await self.page.evaluate("window.__states || []")
        return states


# Records each `data-state` of the status line, so a test can tell that "reconnecting" was shown.
_RECORD_STATES = """
window.__states = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("status");
  new MutationObserver(() => window.__states.push(el.dataset.state))
    .observe(el, { attributes: true, attributeFilter: ["data-state"] });
});
"""


@pytest.fixture
async def open_tab(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Tab]]]:
    tabs: list[Tab] = []

    async def open_(viewport: dict[str, int] = PHONE, init_script: str | None = None) -> Tab:
        mobile = viewport["width"] < 600
        context = await browser.new_context(
            viewport=viewport, device_scale_factor=2 if mobile else 1, has_touch=mobile, locale="en-KE"
        )
        page = await context.new_page()
        page.set_default_timeout(20_000)
        tab = Tab(page, context)
        page.on("request", lambda request: tab.requests.append(request.url))
        await page.add_init_script(_RECORD_STATES)
        if init_script:
            await page.add_init_script(init_script)
        tabs.append(tab)
        return tab

    yield open_
    for tab in tabs:
        with contextlib.suppress(Exception):
            await tab.context.close()


async def sign_in(tab: Tab, base: str, token: str) -> None:
    """What a person does once: open the page, paste the token, sign in."""
    await tab.page.goto(base + "/")
    await tab.page.get_by_label("Your user token").fill(token)
    await tab.page.get_by_role("button", name="Sign in").click()
    await tab.page.locator("#app").wait_for(state="visible")


async def say(tab: Tab, text: str) -> None:
    """Types a line and sends it (the box is found by id: its label follows the conversation's language)."""
    box = tab.page.locator("#say-input")
    await box.fill(text)
    await box.press("Enter")


def screenshot_path(name: str) -> Path:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        folder = REPO / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.png"
    return _SCRATCH / f"{name}.png"


async def snap(tab: Tab, name: str, *, full_page: bool = False) -> None:
    """A screenshot for the README; a whole page is taken from the top (where the sticky bar belongs)."""
    if full_page:
        await tab.page.evaluate("window.scrollTo(0, 0)")
    await tab.page.screenshot(path=screenshot_path(name), full_page=full_page)


async def wait_for(predicate: Callable[[], Awaitable[bool]], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


class TcpProxy:
    """A TCP relay between the browser and the server that a test can hold and cut, as a phone's network
    drops: `hold()` stops delivering what the server sends on the open connections, `cut()` closes them,
    and while `refuse` is set every new connection is closed at once (the network is gone, not just slow)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.refuse = False
        self.server: asyncio.Server | None = None
        self.links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.held: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _link(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.refuse:
            client_w.transport.abort()
            return
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        self.links.append((client_w, server_w))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, downstream: bool) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if downstream and dst in self.held:
                        continue  # the network ate it
                    dst.write(data)
                    await dst.drain()
            for w in (client_w, server_w):
                w.close()

        await asyncio.gather(pipe(client_r, server_w, False), pipe(server_r, client_w, True))

    def hold(self) -> None:
        self.held.update(client_w for client_w, _ in self.links)

    def cut(self) -> None:
        for client_w, server_w in self.links:
            for w in (client_w, server_w):
                with contextlib.suppress(Exception):
                    w.transport.abort()
        self.links.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
