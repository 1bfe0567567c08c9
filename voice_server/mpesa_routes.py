"""M-Pesa in the server: Daraja callbacks, `POST /v1/topups`, and the background service behind them.

`setup_mpesa(app)` is the one call the server needs: it adds the routes and, for the application's lifetime,
runs `MpesaService`: the Daraja client (or, without Daraja credentials, the local simulator on its own port),
the payout outbox worker, auto top-ups, reconciliation by status queries, and the re-application of recorded
callbacks that could not be applied at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from daraja_sim import Simulator
from ledger.daraja.client import (
    PRODUCTION_URL,
    SANDBOX_INITIATOR_PASSWORD,
    SANDBOX_URL,
    DarajaClient,
    DarajaConfig,
)
from ledger.daraja.tokens import DatabaseTokenStore, app_key
from ledger.faults import fault_point
from ledger.limits import MAX_TRANSACTION_KES, kes
from ledger.mpesa_callbacks import CallbackKind, CallbackProcessor
from ledger.payouts import CallbackUrls, PayoutConfig, PayoutWorker
from ledger.service import Ledger
from ledger.topups import TopupError, TopupService
from voice_server.api_models import TopupRequest, TopupResponse
from voice_server.appkeys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from voice_server.auth import request_user
from voice_server.c2b_routes import C2bService, add_c2b_routes, callback_json, callback_refusal
from voice_server.http_errors import json_error
from voice_server.settings import Settings

log = logging.getLogger(__name__)

# Safaricom refuses callback URLs containing "mpesa" (and a few other words): so /v1/callbacks (server.md).
CALLBACK_PREFIX = "/v1/callbacks"

# A round sends at most this long's worth of payouts at the rate cap, so top-ups, reconciliation and C2B wait
# no longer behind a backlog, and `stop` (5 s) rarely has to cancel a round under way.
ROUND_SECONDS = 2.0

CALLBACK_KINDS: dict[str, CallbackKind] = {
    "payout/result": "payout_result",
    "payout/timeout": "payout_timeout",
    "status/result": "status_result",
    "status/timeout": "status_timeout",
    "stk": "stk",
    "balance/result": "balance_result",
    "reversal/result": "reversal_result",
}


@dataclass(frozen=True)
class Round:
    """How a round of the background duties went: it stopped at its payout bound with more perhaps due
    (`backlog`: the next round starts at once), or a duty failed (`failed`)."""

    backlog: bool
    failed: bool


class MpesaService:
    """Everything M-Pesa that runs in the background of one server process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
        simulator: Simulator | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.simulator = simulator
        self._own_simulator = False
        self.ledger = Ledger(pool, proposal_ttl_seconds=settings.proposal_ttl_seconds)
        self.callbacks = CallbackProcessor(pool, self.ledger)
        self.client: DarajaClient | None = None
        self.payouts: PayoutWorker | None = None
        self.topups: TopupService | None = None
        self.c2b: C2bService | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def urls(self) -> CallbackUrls:
        base = (self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}").rstrip("/")
        return CallbackUrls(f"{base}{CALLBACK_PREFIX}/{self.settings.callback_secret()}")

    async def start_without_loop(self) -> None:
        """Client, workers and services, without the background loop (`ongea-pesa mpesa-worker`)."""
        refusal = self.settings.startup_refusal()
        if refusal is not None:
            raise RuntimeError(f"refusing to start: {refusal}")
        config = await self._config()
        # One token for every process on this database (a new token invalidates the previous one).
        tokens = DatabaseTokenStore(self.pool, app_key(config.base_url, config.consumer_key))
        self.client = DarajaClient(config, token_cache=tokens)
        reconcile_after = float(self.settings.payout_reconcile_after_seconds)
        self.payouts = PayoutWorker(self.pool, self.client, self._payout_config(), ledger=self.ledger)
        self.client.pace = self.payouts.pace  # a resend after throttling takes a slot of the process's pace
        self.topups = TopupService(
            self.pool,
            self.client,
            self.urls.stk,
            ledger=self.ledger,
            reconcile_after=reconcile_after,
            lease_seconds=self.lease_seconds,
            rate_limit=self.settings.topup_rate_limit,
            rate_window=float(self.settings.topup_rate_window_seconds),
        )
        self.c2b = C2bService(
            self.pool, self.ledger, self.client, self.settings, stk_shortcode=config.shortcode
        )
        await self.c2b.start()

    async def operator_client(self) -> DarajaClient:
        """A client for a person's one-off requests (float, reversal): the shared token, no workers."""
        refusal = self.settings.startup_refusal()
        if refusal is not None:
            raise RuntimeError(f"refusing to start: {refusal}")
        config = await self._config()
        tokens = DatabaseTokenStore(self.pool, app_key(config.base_url, config.consumer_key))
        self.client = DarajaClient(config, token_cache=tokens)
        return self.client

    def _payout_config(self) -> PayoutConfig:
        """The worker's settings; a round's bound follows the rate, so a round lasts about the same."""
        rate = self.settings.payout_rate_per_second
        return PayoutConfig(
            urls=self.urls,
            reconcile_after=float(self.settings.payout_reconcile_after_seconds),
            lease_seconds=self.lease_seconds,
            rate_per_second=rate,
            max_per_round=max(1, math.ceil(rate * ROUND_SECONDS)),
        )

    async def start(self) -> None:
        await self.start_without_loop()
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="mpesa-service")

    async def _config(self) -> DarajaConfig:
        s = self.settings
        password = s.daraja_initiator_password.get_secret_value() if s.daraja_initiator_password else None
        if s.daraja_configured:
            assert s.daraja_consumer_key is not None and s.daraja_consumer_secret is not None
            base = s.daraja_base_url or (
                PRODUCTION_URL if s.daraja_environment == "production" else SANDBOX_URL
            )
            certificate = s.daraja_certificate_path.read_bytes() if s.daraja_certificate_path else None
            if certificate is None:
                log.warning(
                    "DARAJA_CERTIFICATE_PATH is not set: payouts cannot be signed and will be refused"
                )
            if password is None and s.daraja_environment == "sandbox":
                password = SANDBOX_INITIATOR_PASSWORD
            log.info("Daraja %s at %s (shortcode %s)", s.daraja_environment, base, s.daraja_shortcode)
            return DarajaConfig(
                base_url=base,
                consumer_key=s.daraja_consumer_key.get_secret_value(),
                consumer_secret=s.daraja_consumer_secret.get_secret_value(),
                shortcode=s.daraja_shortcode,
                passkey=s.daraja_passkey.get_secret_value(),
                b2c_shortcode=s.daraja_b2c_shortcode,
                b2b_shortcode=s.daraja_b2b_shortcode or "",
                stk_till=s.daraja_stk_till or "",
                initiator_name=s.daraja_initiator_name,
                initiator_password=password or "",
                certificate=certificate,
            )
        key, secret = secrets.token_urlsafe(12), secrets.token_urlsafe(24)
        if self.simulator is None:
            self.simulator = Simulator(
                consumer_key=key,
                consumer_secret=secret,
                shortcode=s.daraja_shortcode,
                passkey=s.daraja_passkey.get_secret_value(),
                initiator_password=password or SANDBOX_INITIATOR_PASSWORD,
                till=s.daraja_stk_till,
            )
            self._own_simulator = True
        sim = self.simulator
        base = sim.base_url or await sim.start("127.0.0.1", s.mpesa_sim_port)
        log.warning(
            "Daraja credentials are not set: using the local M-Pesa simulator at %s (no real money moves)",
            base,
        )
        return DarajaConfig(
            base_url=base,
            consumer_key=sim.consumer_key or key,
            consumer_secret=sim.consumer_secret or secret,
            shortcode=sim.shortcode,
            passkey=sim.passkey,
            b2c_shortcode=s.daraja_b2c_shortcode,
            b2b_shortcode=s.daraja_b2b_shortcode or "",
            stk_till=s.daraja_stk_till or "",
            initiator_name=s.daraja_initiator_name,
            initiator_password=sim.initiator_password,
            certificate=sim.certificate,
        )

    async def run_once(self) -> bool:
        """One round of every background duty (the loop calls this; tests may too). True when the round
        stopped at its payout bound with more perhaps due: the next round should start at once.

        Each duty runs whatever happened to the ones before it: a payout claim that keeps failing must not
        also stop top-ups being pushed and credited, or recorded callbacks being applied. The failures are
        raised together at the end of the round (an ExceptionGroup), for the loop to log."""
        assert self.payouts is not None and self.topups is not None
        payouts, topups, c2b = self.payouts, self.topups, self.c2b
        failures: list[Exception] = []

        async def duty(run: Callable[[], Awaitable[object]]) -> object:
            try:
                return await run()
            except Exception as exc:
                failures.append(exc)
                return None

        sent = cast(int, await duty(payouts.send_due) or 0)
        await duty(topups.push_auto_topups)
        await duty(payouts.reconcile_due)
        await duty(topups.reconcile_due)
        if c2b is not None:
            await duty(c2b.run_once)
        await duty(self.callbacks.apply_pending)
        if failures:
            raise ExceptionGroup("M-Pesa background duties failed", failures)
        return sent >= payouts.config.max_per_round

    async def logged_round(self) -> Round:
        """`run_once` for the loops of `serve` and `ongea-pesa mpesa-worker`: a failed round is logged and
        they go on (the failed duties are tried again next round)."""
        try:
            return Round(backlog=await self.run_once(), failed=False)
        except Exception:
            log.exception("M-Pesa background round failed; next round in %.1fs", self.poll_interval)
            return Round(backlog=False, failed=True)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            if (await self.logged_round()).backlog:
                continue  # the pause is for an idle worker, not for payouts still waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.poll_interval)

    async def stop(self) -> None:
        """Let the round under way finish (a task cancelled in the middle of BEGIN can hand its pooled
        connection back inside a transaction), cancelling it only if it takes longer than a few seconds."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout=5.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.client is not None:
            await self.client.close()
        if self._own_simulator and self.simulator is not None:
            await self.simulator.stop()


MPESA_KEY = web.AppKey("mpesa", MpesaService)


def setup_mpesa(
    app: web.Application, *, poll_interval: float | None = None, lease_seconds: float | None = None
) -> None:
    """Routes plus the background service for the application's lifetime (needs POOL_KEY and SETTINGS_KEY);
    the idle worker's pause and its lease are ONGEA_MPESA_POLL_SECONDS / ONGEA_MPESA_LEASE_SECONDS unless
    given here, its payouts go out at ONGEA_PAYOUT_RATE_PER_SECOND."""
    add_mpesa_routes(app)

    async def mpesa_context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS_KEY]
        service = MpesaService(
            app[POOL_KEY],
            settings,
            poll_interval=settings.mpesa_poll_seconds if poll_interval is None else poll_interval,
            lease_seconds=settings.mpesa_lease_seconds if lease_seconds is None else lease_seconds,
        )
        await service.start()
        app[MPESA_KEY] = service
        try:
            yield
        finally:
            await service.stop()

    app.cleanup_ctx.append(mpesa_context)


def add_mpesa_routes(app: web.Application) -> None:
    kinds = "|".join(k.replace("/", "\\/") for k in CALLBACK_KINDS)
    app.router.add_post(CALLBACK_PREFIX + "/{secret}/{kind:" + kinds + "}", mpesa_callback)
    # An STK push's CallBackURL ends in its top-up's id (see TopupService._callback_for), a B2B payout's
    # ResultURL and QueueTimeOutURL in its transaction's (see CallbackUrls.payout_result_for).
    app.router.add_post(
        CALLBACK_PREFIX + "/{secret}/{kind:stk|payout\\/result|payout\\/timeout}/{ref}", mpesa_callback
    )
    add_c2b_routes(app)
    app.router.add_post("/v1/topups", create_topup)


# --- handlers ----------------------------------------------------------------------------------------------


async def mpesa_callback(request: web.Request) -> web.Response:
    """A Daraja callback: recorded durably, then acknowledged, then (already) applied exactly once."""
    refusal = callback_refusal(request)
    if refusal is not None:
        return refusal
    kind = CALLBACK_KINDS[request.match_info["kind"]]
    ref = _uuid_or_none(request.match_info.get("ref"))
    if request.match_info.get("ref") is not None and ref is None and kind != "stk":
        return json_error(404, "not_found", "no such callback path")
    topup_id = ref if kind == "stk" else None
    payout_id = ref if kind != "stk" else None
    raw = await request.read()
    body = _json_object(raw)
    service = request.app.get(MPESA_KEY)
    processor = service.callbacks if service is not None else CallbackProcessor(request.app[POOL_KEY])
    fault_point("callback_before_record")
    if body is None:
        text = raw[:10000].decode("utf-8", "replace").replace("\x00", "")
        await processor.receive(kind, {"unparsed": text}, topup_id=topup_id, payout_id=payout_id)
        return json_error(400, "invalid_json", "the callback body is not a JSON object")
    _, applied = await processor.receive(kind, body, topup_id=topup_id, payout_id=payout_id)
    request.app[METRICS_KEY].mpesa_callbacks.labels(kind, applied.outcome).inc()
    if applied.outcome == "amount_mismatch":
        return web.json_response(
            {"ResultCode": 1, "ResultDesc": "Rejected: amount differs from the transaction"}
        )
    return web.json_response({"ResultCode": 0, "ResultDesc": "Accepted"})


async def create_topup(request: web.Request) -> web.Response:
    """`POST /v1/topups {amount}` (user token): an STK push to the user's own M-Pesa number."""
    user_id = request_user(request)
    try:
        body = json.loads(await request.read(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError
        return json_error(400, "invalid_json", "the body is not JSON")
    if not isinstance(body, dict):
        return json_error(400, "invalid_json", 'the body is a JSON object like {"amount": 500}')
    try:
        wanted = TopupRequest.model_validate(body)
    except ValidationError as exc:
        if exc.errors()[0]["loc"][:1] == ("business_id",):
            return json_error(400, "invalid_request", "business_id is a business's id (a UUID)")
        return json_error(
            400,
            "invalid_amount",
            f"amount is a whole number of shillings from 1 to {kes(MAX_TRANSACTION_KES)}",
        )
    amount = wanted.amount
    wallet = user_id
    if wanted.business_id is not None:  # a business wallet: its owner or an admin tops it up
        role = await request.app[POOL_KEY].fetchval(
            """SELECT role FROM business_members
               WHERE business_id = $1 AND user_id = $2 AND removed_at IS NULL""",
            wanted.business_id,
            user_id,
        )
        if role not in ("owner", "admin"):
            return json_error(404, "not_found", "no such business")
        wallet = wanted.business_id
    service = request.app.get(MPESA_KEY)
    if service is None or service.topups is None:
        return json_error(503, "mpesa_unavailable", "M-Pesa is not available right now")
    try:
        started = await service.topups.start(wallet, amount)
    except TopupError as exc:
        return json_error(exc.status, exc.code, exc.message)
    answer = TopupResponse(
        topup_id=started.topup_id,
        checkout_request_id=started.checkout_request_id,
        status="pending",
        amount=f"{started.amount:.2f}",
        phone=started.phone,
        message=started.customer_message or "Check your phone and enter your M-Pesa PIN",
    )
    return web.json_response(answer.model_dump(mode="json"), status=201)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The body as a JSON object PostgreSQL can store (no NaN/Infinity, no NUL characters), else None."""
    try:
        body: dict[str, Any] = callback_json(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError
        return None
    return body


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
