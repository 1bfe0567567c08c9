"""The reference phone-app page (`GET /` and its static files) and, on embedded development defaults only,
the demo-user route that lets a person try it without a terminal.

The demo route creates users without any credentials, so it exists only when the server runs the embedded
PostgreSQL and the M-Pesa simulator: with a `DATABASE_URL` or Daraja credentials set it is not even routed
(404), the same answer as any unknown path.
"""

from __future__ import annotations

import secrets
import urllib.parse
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from ledger.models import LedgerError
from ledger.users import NewUser, create_user
from voice_server.appkeys import POOL_KEY, SETTINGS_KEY
from voice_server.auth import mint_user_token
from voice_server.http_errors import ApiError
from voice_server.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The page loads only its own files and talks only to this server: HTTP and its WebSocket, at 'self' (CSP 3
# matches ws(s) of the page's own host) and at the exact ws(s) origin this server announces (`ws_url`), never
# at any ws:/wss: host.
_CSP = (
    "default-src 'self'; connect-src 'self' {ws_origin}; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_PAGE_HEADERS = web.AppKey("page_headers", dict[str, str])


def ws_origin(settings: Settings) -> str:
    """The ws(s):// origin of this server: ONGEA_PUBLIC_URL's, else the address it listens on."""
    base = urllib.parse.urlsplit(settings.public_url or f"http://{settings.host}:{settings.port}")
    scheme = "wss" if base.scheme == "https" else "ws"
    return f"{scheme}://{base.netloc}"


def page_headers(settings: Settings) -> dict[str, str]:
    return {"Content-Security-Policy": _CSP.format(ws_origin=ws_origin(settings)), **PAGE_HEADERS}


DEMO_ROUTE = "/v1/dev/demo-user"
DEMO_BALANCE = Decimal("10000.00")
DEMO_PLAN = "basic"
DEMO_PIN = "2580"
DEMO_CONTACTS = (
    ("Mary Wambui", "254733444555", "Mama"),
    ("John Kamau", "254722111222", "JK"),
    ("Brian Otieno", "254701234567", "Brayo"),
)
# Each demo user is a database row made without credentials; one process makes at most
# ONGEA_DEMO_USERS_PER_PROCESS (200) of them.
_DEMO_COUNT = web.AppKey("demo_users_made", list[int])


def demo_available(settings: Settings) -> bool:
    """Only on the embedded development defaults: embedded PostgreSQL and the M-Pesa simulator."""
    return settings.database_url is None and not settings.daraja_configured


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers=request.app[_PAGE_HEADERS])


async def demo_offered(request: web.Request) -> web.Response:
    """Lets the page know the demo button would work (the route is absent otherwise)."""
    return web.json_response({"available": True, "balance": str(DEMO_BALANCE), "pin": DEMO_PIN})


async def _make_demo_user(request: web.Request) -> NewUser:
    pool = request.app[POOL_KEY]
    async with pool.acquire() as conn, conn.transaction():
        for _ in range(5):
            phone = f"07{secrets.randbelow(10**8):08d}"
            try:
                user = await create_user(conn, phone, balance=DEMO_BALANCE, plan=DEMO_PLAN, pin=DEMO_PIN)
            except LedgerError as exc:
                if exc.code == "phone_taken":
                    continue
                raise ApiError(400, exc.code, exc.message) from None
            break
        else:
            raise ApiError(409, "phone_taken", "could not find a free demo phone number; try again")
        await conn.executemany(
            "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, $2, $3, $4)",
            [(user.user_id, name, number, nick) for name, number, nick in DEMO_CONTACTS],
        )
    return user


async def demo_user(request: web.Request) -> web.Response:
    # A JSON body cannot be sent cross-site without a CORS preflight (which this server never allows), so
    # another web page open in the developer's browser cannot make users here.
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the request as application/json")
    made = request.app[_DEMO_COUNT]
    # The slot is taken before the first await and given back only if no user was made: the check and the
    # count are one step of the event loop, so concurrent requests cannot pass the cap together.
    if made[0] >= request.app[SETTINGS_KEY].demo_users_per_process:
        raise ApiError(429, "too_many_demo_users", "this server has made enough demo users; restart it")
    made[0] += 1
    try:
        user = await _make_demo_user(request)
    except BaseException:
        made[0] -= 1
        raise
    settings = request.app[SETTINGS_KEY]
    token = mint_user_token(
        settings.user_jwt_secret(), user.user_id, ttl_seconds=settings.user_token_ttl_seconds
    )
    return web.json_response(
        {
            "user_id": str(user.user_id),
            "token": token,
            "phone": user.phone,
            "balance": str(user.balance),
            "plan": user.plan,
            "pin": DEMO_PIN,
            "contacts": [{"name": n, "phone_number": p, "nickname": k} for n, p, k in DEMO_CONTACTS],
        },
        status=201,
    )


def add_page_routes(app: web.Application) -> None:
    """`GET /`, `/static/...`, and the demo-user route when `demo_available(settings)`."""
    app[_PAGE_HEADERS] = page_headers(app[SETTINGS_KEY])
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False, append_version=False)
    if demo_available(app[SETTINGS_KEY]):
        app[_DEMO_COUNT] = [0]
        app.router.add_get(DEMO_ROUTE, demo_offered)
        app.router.add_post(DEMO_ROUTE, demo_user)
