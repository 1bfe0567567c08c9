"""C2B in the server: the validation and confirmation callbacks of deposits into the business paybill
(`bank_to_mpesa`), and the background duties behind them (URL registration, Pull Transactions).

Daraja posts to `/v1/callbacks/{secret}/c2b/validation` and `/v1/callbacks/{secret}/c2b/confirmation`. A
confirmation is recorded in `mpesa_callbacks` before it is acknowledged, then applied once per TransID
(`ledger.c2b`); validation answers from one indexed read, well within Daraja's ~8 s.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

import asyncpg
from aiohttp import web

from ledger.c2b import CONFIRMED, DepositReconciler, register_urls, rejected, validation_answer
from ledger.daraja.client import DarajaClient, DarajaError
from ledger.mpesa_callbacks import CallbackProcessor
from ledger.payouts import fault_point
from ledger.service import Ledger
from voice_server.appkeys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from voice_server.http_errors import json_error
from voice_server.settings import Settings

log = logging.getLogger(__name__)

# Safaricom refuses callback URLs that contain "mpesa" (server.md): C2B lives under /v1/callbacks.
C2B_PREFIX = "/v1/callbacks"
REGISTER_RETRY_SECONDS = 300.0


def c2b_urls(settings: Settings) -> tuple[str, str]:
    """(confirmation URL, validation URL) as registered with Daraja."""
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    root = f"{base}{C2B_PREFIX}/{settings.callback_secret()}/c2b"
    return f"{root}/confirmation", f"{root}/validation"


class C2bService:
    """Per server process: the paybill written for `ledger_confirm`, the URLs registered (one-time in
    production: 'already registered' is fine; another failure is logged and retried), and Pull Transactions
    for lost STK pushes and missed confirmations."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        ledger: Ledger,
        client: DarajaClient,
        settings: Settings,
        *,
        stk_shortcode: str,
    ) -> None:
        self.pool = pool
        self.ledger = ledger
        self.client = client
        self.settings = settings
        self.registered = False
        self._register_at = 0.0
        reconcile = float(settings.payout_reconcile_after_seconds)
        self.reconciler = DepositReconciler(
            pool,
            ledger,
            client,
            stk_shortcode=stk_shortcode,
            c2b_shortcode=settings.daraja_c2b_shortcode,
            interval=reconcile,
            lost_push_grace=2 * reconcile,
            missed_confirmation_after=5 * reconcile,
        )

    async def start(self) -> None:
        await self.ledger.set_c2b_paybill(self.settings.daraja_c2b_shortcode)
        await self.register()

    async def register(self) -> None:
        confirmation, validation = c2b_urls(self.settings)
        try:
            outcome = await register_urls(
                self.client,
                shortcode=self.settings.daraja_c2b_shortcode,
                confirmation_url=confirmation,
                validation_url=validation,
                response_type=self.settings.daraja_c2b_response_type,
                version=self.settings.daraja_c2b_register_version,
            )
        except DarajaError as exc:
            self._register_at = asyncio.get_running_loop().time() + REGISTER_RETRY_SECONDS
            log.error("C2B URLs not registered (deposits cannot be confirmed; retrying): %s", exc)
            return
        self.registered = True
        log.info("C2B URLs for paybill %s: %s", self.settings.daraja_c2b_shortcode, outcome)

    async def run_once(self) -> None:
        now = asyncio.get_running_loop().time()
        if not self.registered and now >= self._register_at:
            await self.register()
        await self.reconciler.run_once(now=now)


def add_c2b_routes(app: web.Application) -> None:
    app.router.add_post(C2B_PREFIX + "/{secret}/c2b/validation", c2b_validation)
    app.router.add_post(C2B_PREFIX + "/{secret}/c2b/confirmation", c2b_confirmation)


def _secret_ok(request: web.Request) -> bool:
    settings = request.app[SETTINGS_KEY]
    return hmac.compare_digest(request.match_info["secret"].encode(), settings.callback_secret().encode())


async def _body(request: web.Request) -> Any:
    try:
        return await request.json(loads=_loads)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(raw: str) -> Any:
    body = json.loads(raw, parse_constant=_no_constant)
    if not isinstance(body, dict) or "\\u0000" in raw or "\x00" in raw:
        raise ValueError("not a JSON object PostgreSQL can store")
    return body


async def c2b_validation(request: web.Request) -> web.Response:
    """Daraja asks whether to accept a deposit: accepted only for a reference an expected deposit awaits."""
    if not _secret_ok(request):
        return json_error(404, "not_found", "no such callback path")
    body = await _body(request)
    if body is None:
        return web.json_response(rejected("C2B00016"))
    answer = await validation_answer(
        request.app[POOL_KEY], body, request.app[SETTINGS_KEY].daraja_c2b_shortcode
    )
    request.app[METRICS_KEY].mpesa_callbacks.labels("c2b_validation", answer["ResultDesc"].lower()).inc()
    return web.json_response(answer)


async def c2b_confirmation(request: web.Request) -> web.Response:
    """A deposit arrived: recorded durably, acknowledged, and (already) credited once per TransID."""
    if not _secret_ok(request):
        return json_error(404, "not_found", "no such callback path")
    body = await _body(request)
    processor = CallbackProcessor(request.app[POOL_KEY])
    fault_point("callback_before_record")
    if body is None:
        text = (await request.read())[:10000].decode("utf-8", "replace").replace("\x00", "")
        await processor.receive("c2b_confirmation", {"unparsed": text})
        return json_error(400, "invalid_json", "the callback body is not a JSON object")
    _, applied = await processor.receive("c2b_confirmation", body)
    request.app[METRICS_KEY].mpesa_callbacks.labels("c2b_confirmation", applied.outcome).inc()
    return web.json_response(CONFIRMED)
