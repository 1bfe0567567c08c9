"""The simulator's state, its lifetime and the plumbing every API shares (tokens, throttling, callbacks)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from daraja_sim import c2b, control, errors, fields, payouts, stk
from daraja_sim import paths as p
from daraja_sim.crypto import decrypt_credential, new_certificate
from daraja_sim.state import Behaviour, Delivery, Received, Rule, SimC2b, SimPayout, SimStk

log = logging.getLogger("daraja_sim")

SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SANDBOX_INITIATOR_PASSWORD = "Safaricom999!*!"
SAFARICOM_CALLER = "196.201.214.200"  # the first of Safaricom's published callback addresses


@dataclass
class Simulator:
    """State and behaviour of the fake Daraja; `app()` is its aiohttp application."""

    consumer_key: str | None = None  # None: any non-empty key/secret pair is accepted
    consumer_secret: str | None = None
    shortcode: str = "174379"
    passkey: str = SANDBOX_PASSKEY
    initiator_password: str = SANDBOX_INITIATOR_PASSWORD
    callback_delay: float = 0.03
    token_lifetime: int = 3599
    # How far an STK Timestamp may be from Nairobi's clock; None: any (the portal's samples are years old).
    timestamp_tolerance: dt.timedelta | None = dt.timedelta(minutes=5)
    default: Behaviour = field(default_factory=Behaviour)
    rules: list[Rule] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    payouts: dict[str, SimPayout] = field(default_factory=dict)
    stk: dict[str, SimStk] = field(default_factory=dict)
    till: str | None = None  # the till STK pushes of type CustomerBuyGoodsOnline may pay (PartyB)
    # C2B: URLs registered per shortcode; production registers once (a repeat answers 500.003.1001).
    c2b_urls: dict[str, dict[str, str]] = field(default_factory=dict)
    c2b_register_once: bool = False
    c2b_validation: bool = True  # whether Safaricom calls the ValidationURL (enabled per shortcode)
    c2b_msisdn_form: Literal["masked", "hashed", "plain"] = "masked"
    c2b_payments: list[SimC2b] = field(default_factory=list)
    # Pull Transactions: a shortcode must be registered (once) before it can be queried.
    pull_registered: dict[str, str] = field(default_factory=dict)
    pull_requires_registration: bool = True
    # Daraja refuses a push to a phone that has one still waiting for its PIN ("Unable to lock subscriber").
    lock_subscriber: bool = False
    # How an STK query says "still processing": HTTP 500 500.001.1001, or HTTP 200 with ResultCode 4999.
    stk_pending_form: Literal["http_500", "result_4999"] = "http_500"
    # Transaction Status finds a payout by the id the portal documents (the OriginatorConversationID of
    # the request's answer) or its receipt; True also by Daraja's ConversationID (sources disagree).
    status_by_conversation_id: bool = False
    # The float Account Balance reports (B2C pays from Utility, B2B from Working).
    # Callbacks to a URL starting with the first are delivered to the second instead: the stand-in for the
    # TLS proxy in front of a server whose ONGEA_PUBLIC_URL is https:// (production-like trials).
    callback_rewrite: tuple[str, str] | None = None
    utility_balance: Decimal = Decimal("900000.00")
    working_balance: Decimal = Decimal("700000.00")
    tokens_issued: int = 0
    token_refusals: int = 0
    certificate: bytes = b""
    # Throttling: every `throttle_every`-th request is refused with 500.003.02/.03 until `throttle_until`.
    throttle_every: int = 0
    throttle_until: float = 0.0
    throttled: int = 0
    _throttle_count: int = 0
    _key: rsa.RSAPrivateKey | None = None
    _token: str | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None
    _runner: web.AppRunner | None = None
    base_url: str = ""

    def __post_init__(self) -> None:
        if self._key is None:
            self.certificate, self._key = new_certificate()

    # --- control (tests call these directly; the HTTP control endpoints call them too) ---------------

    def add_rule(self, behaviour: Behaviour, **match: Any) -> Rule:
        rule = Rule(behaviour=behaviour, **match)
        self.rules.append(rule)
        return rule

    def reset(self) -> None:
        self.rules.clear()
        self.received.clear()
        self.deliveries.clear()
        self.default = Behaviour()
        self.throttle_every = 0

    async def delivered(
        self, url: str, *, where: Callable[[Delivery], bool] = lambda _: True, within: float = 10
    ) -> list[Delivery]:
        """The callbacks delivered to `url` (those `where` picks), once there is one. A delivery is recorded
        when our server has answered it, a moment after the server wrote what it said: a test that saw the
        write waits here."""
        deadline = asyncio.get_running_loop().time() + within
        while not (found := [d for d in self.deliveries if d.url == url and where(d)]):
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"no callback delivered to {urlsplit(url).path} within {within} s")
            await asyncio.sleep(0.02)
        return found

    def throttle(self, every: int, seconds: float) -> None:
        """Refuse every `every`-th request (3: a third) as throttled for `seconds` from now."""
        self.throttle_every = every
        self._throttle_count = 0
        self.throttle_until = _now() + seconds

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def sent_payouts(self, originator: str) -> list[Received]:
        """Payment requests received with this OriginatorConversationID, or (B2B, which has none) whose
        ResultURL ends in it (duplicates and requests refused for their token included)."""
        return [
            r
            for r in self.received
            if r.path in p.PAYOUTS
            and isinstance(r.body, dict)
            and (
                r.body.get("OriginatorConversationID") == originator
                or str(r.body.get("ResultURL", "")).endswith("/" + originator)
            )
        ]

    def payouts_for(self, reference: str) -> list[SimPayout]:
        """Payouts accepted (paid or not) for our id: OriginatorConversationID, or a B2B ResultURL's end."""
        return [
            payout
            for payout in self.payouts.values()
            if payout.originator_conversation_id == reference or payout.result_url.endswith("/" + reference)
        ]

    async def idle(self, limit: float = 10.0) -> None:
        """Wait until every scheduled callback has been delivered (or failed)."""
        deadline = asyncio.get_running_loop().time() + limit
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError("simulator callbacks still pending")
            await asyncio.wait(set(self._tasks), timeout=remaining)

    def behaviour_for(self, path: str, body: dict[str, Any]) -> Behaviour:
        for rule in self.rules:
            if rule.matches(path, body):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self.rules.remove(rule)
                return rule.behaviour
        return self.default

    async def c2b_pay(
        self,
        shortcode: str,
        amount: Decimal,
        bill_ref: str,
        msisdn: str = "254708374149",
        *,
        transaction_type: str = "Pay Bill",
        first_name: str = "JOHN",
        deliver: bool = True,
    ) -> SimC2b:
        """A person pays `amount` into `shortcode` with `bill_ref` (as a bank app does): see c2b.pay."""
        return await c2b.pay(
            self,
            shortcode,
            amount,
            bill_ref,
            msisdn,
            transaction_type=transaction_type,
            first_name=first_name,
            deliver=deliver,
        )

    # --- lifetime -------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[errors.json_errors])
        app.router.add_get(p.OAUTH, self._oauth)
        stk.add_routes(app, self)
        payouts.add_routes(app, self)
        c2b.add_routes(app, self)
        control.add_routes(app, self)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); return the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.base_url = f"http://{bound[0]}:{bound[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _on_cleanup(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- shared plumbing ---------------------------------------------------------------------------------

    def record(self, request: web.Request, body: Any) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        self.received.append(Received(request.path, body, headers, asyncio.get_running_loop().time()))

    def _throttled(self) -> web.Response | None:
        if self.throttle_every <= 0 or _now() >= self.throttle_until:
            return None
        self._throttle_count += 1
        if self._throttle_count % self.throttle_every:
            return None
        self.throttled += 1
        code = errors.SPIKE_ARREST if self.throttled % 2 else errors.QUOTA
        return errors.daraja_error(500, code, errors.THROTTLED[code])

    async def body(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The request's JSON after Daraja's gate: throttling, JSON, token, then the page's field rules."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            self.record(request, await request.text())
            return errors.daraja_error(400, errors.INVALID_JSON, "Invalid Request Payload")
        self.record(request, body)
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        if not isinstance(body, dict):
            return errors.daraja_error(400, errors.INVALID_JSON, "Invalid Request Payload")
        header = request.headers.get("Authorization", "")
        if self._token is None or header != f"Bearer {self._token}":
            self.token_refusals += 1
            status, code = errors.TOKEN_ERRORS.get(request.path, (401, "401.002.01"))
            return errors.daraja_error(status, code, "Invalid Access Token")
        bad = fields.first_invalid(request.path, body)
        if bad is not None:
            return errors.invalid(bad)
        return body

    def refusal(self, behaviour: Behaviour) -> web.Response | None:
        """The error a rule tells the simulator to answer instead of processing the request."""
        if behaviour.http_error is None and behaviour.error_code is None:
            return None
        status = behaviour.http_error or 500
        code = behaviour.error_code or f"{status}.003.01"
        return errors.daraja_error(status, code, behaviour.error_message or "Simulated failure")

    def initiator_ok(self, credential: str) -> bool:
        assert self._key is not None
        return decrypt_credential(credential, self._key) == self.initiator_password

    def schedule(self, delay: float, url: str, payload: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delay, url, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def schedule_callbacks(
        self,
        behaviour: Behaviour,
        url: str,
        payload: dict[str, Any],
        *,
        timeout_url: str | None,
        stale: dict[str, Any] | None = None,
    ) -> None:
        delay = self.delay(behaviour)
        if behaviour.callback == "once":
            self.schedule(delay, url, payload)
        elif behaviour.callback == "twice":
            self.schedule(delay, url, payload)
            self.schedule(delay * 2 + 0.01, url, payload)
        elif behaviour.callback == "out_of_order":
            # The result overtakes the synchronous answer; a stale queue-timeout notice follows it.
            self.schedule(0, url, payload)
            if timeout_url is not None and stale is not None:
                self.schedule(delay * 2 + 0.01, timeout_url, stale)
            else:
                self.schedule(delay * 2 + 0.01, url, payload)

    def delay(self, behaviour: Behaviour) -> float:
        return self.callback_delay if behaviour.delay is None else behaviour.delay

    async def _deliver(self, delay: float, url: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(delay)
        await self.post_now(url, payload, within=10)

    async def post_now(
        self, url: str, payload: dict[str, Any], *, within: float = 8
    ) -> dict[str, Any] | None:
        """Post a callback now and return its JSON answer (None when it fails or takes too long)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        now = asyncio.get_running_loop().time()
        target, headers = url, {}
        if self.callback_rewrite is not None and url.startswith(self.callback_rewrite[0]):
            # As the proxy would: the call came from Safaricom (its first published callback address).
            target = self.callback_rewrite[1] + url[len(self.callback_rewrite[0]) :]
            headers["X-Forwarded-For"] = SAFARICOM_CALLER
        try:
            async with self._session.post(
                target, json=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=within)
            ) as resp:
                text = await resp.text()
                self.deliveries.append(Delivery(url, payload, resp.status, None, now))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.deliveries.append(Delivery(url, payload, None, f"{type(exc).__name__}: {exc}", now))
            # Our callback URLs carry a secret path segment: only the host is logged.
            log.info("simulator: callback to %s failed: %s", urlsplit(url).netloc, type(exc).__name__)
            return None
        try:
            answer = json.loads(text)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    # --- OAuth -----------------------------------------------------------------------------------------

    async def _oauth(self, request: web.Request) -> web.Response:
        self.record(request, dict(request.query))
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        if request.query.get("grant_type") != "client_credentials":
            return errors.daraja_error(400, "400.008.02", "Invalid grant type passed")
        header = request.headers.get("Authorization", "")
        try:
            scheme, _, encoded = header.partition(" ")
            key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return errors.daraja_error(400, "400.008.01", "Invalid Authentication passed")
        if scheme != "Basic" or not key or not secret:
            return errors.daraja_error(400, "400.008.01", "Invalid Authentication passed")
        if self.consumer_key is not None and (key, secret) != (self.consumer_key, self.consumer_secret):
            return errors.daraja_error(400, "400.008.01", "Invalid Authentication passed")
        # Like Daraja: a new token invalidates the previous one.
        self._token = secrets.token_urlsafe(24)
        self.tokens_issued += 1
        return web.json_response({"access_token": self._token, "expires_in": str(self.token_lifetime)})


def _now() -> float:
    return time.monotonic()
