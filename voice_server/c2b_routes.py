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
import math
from typing import Any

import asyncpg
from aiohttp import web

from ledger.c2b import (
    CONFIRMED,
    DepositReconciler,
    register_pull,
    register_urls,
    rejected,
    validation_answer,
)
from ledger.daraja.client import DarajaClient, DarajaError
from ledger.faults import fault_point
from ledger.mpesa_callbacks import CallbackProcessor
from ledger.service import Ledger
from voice_server.appkeys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from voice_server.callback_sources import allowed
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


def pull_url(settings: Settings) -> str:
    """The CallBackURL given when registering Pull Transactions (acknowledged, nothing is done with it)."""
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    return f"{base}{C2B_PREFIX}/{settings.callback_secret()}/pull"


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
        self.stk_shortcode = stk_shortcode
        self.pull_registered: set[str] = set()
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
            till=bool(settings.daraja_stk_till),
        )

    async def start(self) -> None:
        await self.ledger.set_c2b_paybill(self.settings.daraja_c2b_shortcode)
        await self.register()

    async def register(self) -> None:
        await self.register_pull()
        if not self.registered:
            await self.register_urls()
        if self.registered and self.pull_registered >= self.pull_shortcodes():
            return
        self._register_at = asyncio.get_running_loop().time() + REGISTER_RETRY_SECONDS

    def pull_shortcodes(self) -> set[str]:
        """Pull Transactions is asked about both shortcodes money comes into (STK top-ups and C2B)."""
        return {self.stk_shortcode, self.settings.daraja_c2b_shortcode}

    async def register_pull(self) -> None:
        for shortcode in sorted(self.pull_shortcodes() - self.pull_registered):
            try:
                outcome = await register_pull(
                    self.client,
                    shortcode=shortcode,
                    nominated_number=self.settings.daraja_pull_nominated_number,
                    callback_url=pull_url(self.settings),
                )
            except DarajaError as exc:
                log.error("Pull Transactions not registered for %s (lost payments cannot be found; "
                          "retrying): %s", shortcode, exc)  # fmt: skip
                continue
            self.pull_registered.add(shortcode)
            log.info("Pull Transactions for shortcode %s: %s", shortcode, outcome)

    async def register_urls(self) -> None:
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
            log.error("C2B URLs not registered (deposits cannot be confirmed; retrying): %s", exc)
            return
        self.registered = True
        log.info("C2B URLs for paybill %s: %s", self.settings.daraja_c2b_shortcode, outcome)

    async def run_once(self) -> None:
        now = asyncio.get_running_loop().time()
        done = self.registered and self.pull_registered >= self.pull_shortcodes()
        if not done and now >= self._register_at:
            await self.register()
        await self.reconciler.run_once(now=now)


def add_c2b_routes(app: web.Application) -> None:
    app.router.add_post(C2B_PREFIX + "/{secret}/c2b/validation", c2b_validation)
    app.router.add_post(C2B_PREFIX + "/{secret}/c2b/confirmation", c2b_confirmation)
    app.router.add_post(C2B_PREFIX + "/{secret}/pull", pull_notice)


def callback_refusal(request: web.Request) -> web.Response | None:
    """Why a Daraja callback is refused before anything is recorded: not from an allowed source (403), or
    not the secret path (404, as any unknown path). The previous secret is still accepted while Daraja has
    URLs registered under it (README: moving registered URLs)."""
    settings = request.app[SETTINGS_KEY]
    forwarded = request.headers.get("X-Forwarded-For")
    if not allowed(
        request.remote, forwarded, settings.mpesa_callback_allowlist, settings.mpesa_trusted_proxies
    ):
        log.warning("M-Pesa callback refused from %s (not in ONGEA_MPESA_CALLBACK_ALLOWLIST)", request.remote)
        return json_error(403, "forbidden", "callbacks are accepted from M-Pesa's addresses only")
    given = request.match_info["secret"].encode()
    if not any(hmac.compare_digest(given, secret.encode()) for secret in settings.callback_secrets()):
        return json_error(404, "not_found", "no such callback path")
    return None


async def _body(request: web.Request) -> Any:
    try:
        return await request.json(loads=callback_json)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number as a float, refused when beyond a float's range (`1e400` would be `inf`, which
    PostgreSQL cannot store as JSON: the callback could not be recorded at all)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range")
    return value


def callback_json(raw: str | bytes) -> Any:
    """A callback body as a JSON object PostgreSQL can store (no NaN, Infinity, out-of-range numbers or
    NUL characters); ValueError otherwise."""
    body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not isinstance(body, dict) or "\\u0000" in raw or "\x00" in raw:
        raise ValueError("not a JSON object PostgreSQL can store")
    return body


async def c2b_validation(request: web.Request) -> web.Response:
    """Daraja asks whether to accept a deposit: accepted only for a reference an expected deposit awaits."""
    refusal = callback_refusal(request)
    if refusal is not None:
        return refusal
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
    refusal = callback_refusal(request)
    if refusal is not None:
        return refusal
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


async def pull_notice(request: web.Request) -> web.Response:
    """What Daraja posts to the Pull Transactions CallBackURL: acknowledged (the queries read payments)."""
    refusal = callback_refusal(request)
    if refusal is not None:
        return refusal
    return web.json_response({"ResultCode": 0, "ResultDesc": "Accepted"})
