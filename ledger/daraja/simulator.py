"""A local Daraja: the same endpoints, the same checks, and result callbacks to the URLs it was given.

Safaricom cannot be reached from development machines or CI, so this aiohttp application stands in for it.
It behaves like the real API where that matters for money: it issues OAuth tokens (a new token invalidates
the previous one, and a refused token is reported with each API's own code and HTTP status), checks the
STK password and its Nairobi timestamp, decrypts the `SecurityCredential` with the private key of its own
certificate, refuses a reused `OriginatorConversationID` with HTTP 500 `500.002.1001`, assigns B2B ids itself
(B2B requests carry no `OriginatorConversationID`), can report the non-verdict result codes 15 and 17 while
the money moved (or not), answers STK queries "still processing" in both of Daraja's forms, answers status
queries truthfully, and posts callbacks asynchronously after a short delay.

Per request it can be told (by rules matched on path, amount, phone/PartyB or OriginatorConversationID, or by
a default) to succeed, fail with a real result code, time out (no callback), call back twice, or call back
out of order (result before the synchronous answer, then a stale queue-timeout callback). Every request it
received and every callback it delivered is recorded for tests to inspect.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import secrets
import string
import uuid
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ValidationError

from ledger.daraja import client as api
from ledger.daraja.credentials import (
    NAIROBI,
    decrypt_security_credential,
    generate_certificate,
    parse_nairobi_timestamp,
    stk_password,
)
from ledger.daraja.models import (
    B2BRequest,
    B2CRequest,
    B2PochiRequest,
    StkPushRequest,
    StkQueryRequest,
    TransactionStatusRequest,
)

log = logging.getLogger(__name__)

CallbackMode = Literal["once", "twice", "none", "out_of_order"]

# Real Daraja result codes the simulator uses for failures.
INITIATOR_INVALID = (2001, "The initiator information is invalid.")
INSUFFICIENT_FUNDS = (1, "The balance is insufficient for the transaction.")
STK_CANCELLED = (1032, "Request cancelled by user")
STK_INSUFFICIENT = (1, "The balance is insufficient for the transaction.")
NOT_FOUND = ("R000002", "The transaction could not be found.")
PROCESSED = "The service request is processed successfully."
DUPLICATE_DETECTED = (15, "Duplicate detected")
INTERNAL_FAILURE = (17, "Internal failure")
NON_VERDICTS = {DUPLICATE_DETECTED[0]: DUPLICATE_DETECTED[1], INTERNAL_FAILURE[0]: INTERNAL_FAILURE[1]}
# How each API reports an invalid or expired access token (status, errorCode).
TOKEN_ERRORS: dict[str, tuple[int, str]] = {
    api.STK_PUSH_PATH: (404, "404.001.03"),
    api.STK_QUERY_PATH: (404, "404.001.03"),
    api.B2C_PATH: (401, "401.002.01"),
    api.B2POCHI_PATH: (401, "401.002.01"),
    api.B2B_PATH: (400, "400.003.01"),
    api.STATUS_PATH: (400, "400.003.01"),
}
TIMESTAMP_TOLERANCE = dt.timedelta(minutes=5)


@dataclass
class Behaviour:
    """What the simulator does with one request."""

    outcome: Literal["success", "fail"] = "success"
    result_code: int | str | None = None  # None: a real default for the request kind
    result_desc: str | None = None
    callback: CallbackMode = "once"
    delay: float | None = None  # seconds before the callback; None = the simulator's default
    code_as_string: bool = False  # send ResultCode as "0" instead of 0, as Daraja sometimes does
    callback_amount: Decimal | None = None  # report another amount in the callback (a forged/odd callback)
    http_error: int | None = None  # answer with this HTTP status without processing (e.g. 500, 429)
    # Report this result code (e.g. 15 or 17, which are no verdict) in the result callback, whatever the
    # outcome; the status query still tells the truth (`outcome`).
    callback_code: int | str | None = None
    blank_conversation_id: bool = False  # accept, but answer with an empty ConversationID
    lose_response: bool = False  # process the request, then answer 503 as if the answer got lost

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        data = dict(data)
        if data.get("callback_amount") is not None:
            data["callback_amount"] = Decimal(str(data["callback_amount"]))
        return cls(**data)


@dataclass
class Rule:
    behaviour: Behaviour
    path: str | None = None
    amount: int | None = None
    party: str | None = None  # PartyB of payouts, PhoneNumber of STK pushes
    originator: str | None = None
    times: int | None = None  # None = for ever

    def matches(self, path: str, body: dict[str, Any]) -> bool:
        if self.path is not None and not path.startswith(self.path):
            return False
        if self.amount is not None and str(body.get("Amount")) != str(self.amount):
            return False
        parties = (str(body.get("PartyB")), str(body.get("PhoneNumber")))
        if self.party is not None and self.party not in parties:
            return False
        return self.originator is None or str(body.get("OriginatorConversationID")) == self.originator


@dataclass
class Received:
    path: str
    body: Any
    headers: dict[str, str]
    at: float


@dataclass
class Delivery:
    url: str
    body: dict[str, Any]
    status: int | None
    error: str | None
    at: float


@dataclass
class SimPayout:
    originator_conversation_id: str
    conversation_id: str
    result_url: str
    path: str
    command: str
    amount: int
    party_a: str
    party_b: str
    success: bool
    result_code: int | str
    result_desc: str
    receipt: str
    completed_at: dt.datetime


@dataclass
class SimStk:
    checkout_request_id: str
    merchant_request_id: str
    amount: int
    phone: str
    success: bool
    result_code: int | str
    result_desc: str
    receipt: str
    decided_at: float  # loop time after which a query tells the result
    account_reference: str = ""
    paid_at: dt.datetime | None = None


@dataclass
class SimC2b:
    """A payment into a paybill (a person's bank app or phone), as Pull Transactions lists it."""

    trans_id: str
    shortcode: str
    amount: Decimal
    bill_ref: str
    msisdn: str
    at: dt.datetime
    validated: str = ""  # the validation answer's ResultCode ("" = validation not asked)
    confirmed: bool = False


@dataclass
class Simulator:
    """State and behaviour of the fake Daraja; `app()` is its aiohttp application."""

    consumer_key: str | None = None  # None: any non-empty key/secret pair is accepted
    consumer_secret: str | None = None
    shortcode: str = "174379"
    passkey: str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
    initiator_password: str = api.SANDBOX_INITIATOR_PASSWORD
    callback_delay: float = 0.03
    token_lifetime: int = 3599
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
    # How an STK query says "still processing": HTTP 500 500.001.1001, or HTTP 200 with ResultCode 4999.
    stk_pending_form: Literal["http_500", "result_4999"] = "http_500"
    tokens_issued: int = 0
    token_refusals: int = 0
    certificate: bytes = b""
    _key: rsa.RSAPrivateKey | None = None
    _token: str | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None
    _runner: web.AppRunner | None = None
    base_url: str = ""

    def __post_init__(self) -> None:
        if self._key is None:
            self.certificate, self._key = generate_certificate()

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

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def sent_payouts(self, originator: str) -> list[Received]:
        """Payment requests received with this OriginatorConversationID, or (B2B, which has none) whose
        ResultURL ends in it (duplicates and requests refused for their token included)."""
        return [
            r
            for r in self.received
            if r.path in (api.B2C_PATH, api.B2POCHI_PATH, api.B2B_PATH)
            and isinstance(r.body, dict)
            and (
                r.body.get("OriginatorConversationID") == originator
                or str(r.body.get("ResultURL", "")).endswith("/" + originator)
            )
        ]

    def payouts_for(self, reference: str) -> list[SimPayout]:
        """Payouts accepted (paid or not) for our id: OriginatorConversationID, or a B2B ResultURL's end."""
        return [
            p
            for p in self.payouts.values()
            if p.originator_conversation_id == reference or p.result_url.endswith("/" + reference)
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

    # --- lifetime -------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(api.OAUTH_PATH, self._oauth)
        app.router.add_post(api.STK_PUSH_PATH, self._stk_push)
        app.router.add_post(api.STK_QUERY_PATH, self._stk_query)
        app.router.add_post(api.B2C_PATH, self._payout)
        app.router.add_post(api.B2POCHI_PATH, self._payout)
        app.router.add_post(api.B2B_PATH, self._payout)
        app.router.add_post(api.STATUS_PATH, self._status)
        app.router.add_post("/mpesa/c2b/v1/registerurl", self._c2b_register)
        app.router.add_post("/mpesa/c2b/v2/registerurl", self._c2b_register)
        app.router.add_post("/mpesa/c2b/v1/simulate", self._c2b_simulate)
        app.router.add_post("/pulltransactions/v1/query", self._pull_transactions)
        app.router.add_post("/simulator/behaviour", self._control_behaviour)
        app.router.add_post("/simulator/reset", self._control_reset)
        app.router.add_get("/simulator/requests", self._control_requests)
        app.router.add_get("/simulator/callbacks", self._control_callbacks)
        app.router.add_get("/simulator/payouts", self._control_payouts)
        app.router.add_get("/simulator/certificate", self._control_certificate)
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

    # --- helpers ---------------------------------------------------------------------------------------

    def _record(self, request: web.Request, body: Any) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        self.received.append(Received(request.path, body, headers, asyncio.get_running_loop().time()))

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return self._token is not None and header == f"Bearer {self._token}"

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._record(request, await request.text())
            return _error(400, "400.002.02", "Bad Request - Invalid JSON")
        self._record(request, body)
        if not isinstance(body, dict):
            return _error(400, "400.002.02", "Bad Request - Invalid JSON")
        if not self._authorised(request):
            self.token_refusals += 1
            status, code = TOKEN_ERRORS.get(request.path, (401, "401.002.01"))
            return _error(status, code, "Invalid Access Token")
        return body

    def _schedule(self, delay: float, url: str, payload: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delay, url, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delay: float, url: str, payload: dict[str, Any]) -> None:
        await asyncio.sleep(delay)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        now = asyncio.get_running_loop().time()
        try:
            async with self._session.post(url, json=payload) as resp:
                await resp.read()
                self.deliveries.append(Delivery(url, payload, resp.status, None, now))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.deliveries.append(Delivery(url, payload, None, f"{type(exc).__name__}: {exc}", now))
            # Our callback URLs carry a secret path segment: only the host is logged.
            log.info("simulator: callback to %s failed: %s", urlsplit(url).netloc, type(exc).__name__)

    def _delay(self, behaviour: Behaviour) -> float:
        return self.callback_delay if behaviour.delay is None else behaviour.delay

    # --- OAuth -----------------------------------------------------------------------------------------

    async def _oauth(self, request: web.Request) -> web.Response:
        self._record(request, dict(request.query))
        if request.query.get("grant_type") != "client_credentials":
            return _error(400, "400.008.02", "Invalid grant type passed")
        header = request.headers.get("Authorization", "")
        try:
            scheme, _, encoded = header.partition(" ")
            key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "400.008.01", "Invalid Authentication passed")
        if scheme != "Basic" or not key or not secret:
            return _error(400, "400.008.01", "Invalid Authentication passed")
        if self.consumer_key is not None and (key, secret) != (self.consumer_key, self.consumer_secret):
            return _error(400, "400.008.01", "Invalid Authentication passed")
        # Like Daraja: a new token invalidates the previous one.
        self._token = secrets.token_urlsafe(24)
        self.tokens_issued += 1
        return web.json_response({"access_token": self._token, "expires_in": str(self.token_lifetime)})

    # --- STK push --------------------------------------------------------------------------------------

    def _check_stk_auth(self, body: dict[str, Any]) -> web.Response | None:
        timestamp = str(body.get("Timestamp", ""))
        try:
            sent = parse_nairobi_timestamp(timestamp)
        except ValueError:
            return _error(400, "400.002.02", "Bad Request - Invalid Timestamp")
        if abs(dt.datetime.now(NAIROBI) - sent) > TIMESTAMP_TOLERANCE:
            return _error(400, "400.002.02", "Bad Request - Invalid Timestamp")
        if str(body.get("BusinessShortCode")) != self.shortcode:
            return _error(400, "400.002.02", "Bad Request - Invalid BusinessShortCode")
        if body.get("Password") != stk_password(self.shortcode, self.passkey, timestamp):
            return _error(400, "400.002.02", "Bad Request - Invalid Password")
        if "TransactionType" in body:
            # A paybill is paid to itself; a till through its store number (BusinessShortCode).
            buy_goods = body.get("TransactionType") == "CustomerBuyGoodsOnline"
            expected = self.till if buy_goods else self.shortcode
            if expected is None or str(body.get("PartyB")) != expected:
                return _error(400, "400.002.02", "Bad Request - Invalid PartyB")
        return None

    async def _stk_push(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        invalid = _validate(StkPushRequest, body) or self._check_stk_auth(body)
        if invalid is not None:
            return invalid
        behaviour = self.behaviour_for(request.path, body)
        if behaviour.http_error is not None:
            return _error(behaviour.http_error, f"{behaviour.http_error}.003.01", "Simulated failure")
        loop = asyncio.get_running_loop()
        fail_code, fail_desc = STK_CANCELLED
        stk = SimStk(
            checkout_request_id=f"ws_CO_{dt.datetime.now(NAIROBI):%d%m%Y%H%M%S}{secrets.randbelow(10**9):09d}",
            merchant_request_id=f"{secrets.randbelow(99999):05d}-{secrets.randbelow(10**8):08d}-1",
            amount=int(body["Amount"]),
            phone=str(body["PhoneNumber"]),
            success=behaviour.outcome == "success",
            result_code=0 if behaviour.outcome == "success" else (behaviour.result_code or fail_code),
            result_desc=behaviour.result_desc or (PROCESSED if behaviour.outcome == "success" else fail_desc),
            receipt=_receipt(),
            decided_at=loop.time() + self._delay(behaviour),
            account_reference=str(body.get("AccountReference", "")),
            paid_at=dt.datetime.now(NAIROBI),
        )
        self.stk[stk.checkout_request_id] = stk
        payload = self._stk_callback(stk, behaviour)
        url = str(body["CallBackURL"])
        self._schedule_callbacks(behaviour, url, payload, timeout_url=None)
        if behaviour.lose_response:
            return _error(503, "503.001.01", "Service Unavailable")
        if behaviour.callback == "out_of_order":
            await asyncio.sleep(self._delay(behaviour))
        return web.json_response(
            {
                "MerchantRequestID": stk.merchant_request_id,
                "CheckoutRequestID": stk.checkout_request_id,
                "ResponseCode": "0",
                "ResponseDescription": "Success. Request accepted for processing",
                "CustomerMessage": "Success. Request accepted for processing",
            }
        )

    def _stk_callback(self, stk: SimStk, behaviour: Behaviour) -> dict[str, Any]:
        code: int | str = str(stk.result_code) if behaviour.code_as_string else stk.result_code
        callback: dict[str, Any] = {
            "MerchantRequestID": stk.merchant_request_id,
            "CheckoutRequestID": stk.checkout_request_id,
            "ResultCode": code,
            "ResultDesc": stk.result_desc,
        }
        if stk.success:
            amount = behaviour.callback_amount if behaviour.callback_amount is not None else stk.amount
            callback["CallbackMetadata"] = {
                "Item": [
                    {"Name": "Amount", "Value": float(amount)},
                    {"Name": "MpesaReceiptNumber", "Value": stk.receipt},
                    {"Name": "Balance"},
                    {"Name": "TransactionDate", "Value": int(f"{dt.datetime.now(NAIROBI):%Y%m%d%H%M%S}")},
                    {"Name": "PhoneNumber", "Value": int(stk.phone)},
                ]
            }
        return {"Body": {"stkCallback": callback}}

    async def _stk_query(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        invalid = _validate(StkQueryRequest, body) or self._check_stk_auth(body)
        if invalid is not None:
            return invalid
        stk = self.stk.get(str(body["CheckoutRequestID"]))
        if stk is None:
            return _error(400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
        if asyncio.get_running_loop().time() < stk.decided_at:
            if self.stk_pending_form == "result_4999":
                return web.json_response(
                    {
                        "ResponseCode": "0",
                        "ResponseDescription": "The service request has been accepted successsfully",
                        "MerchantRequestID": stk.merchant_request_id,
                        "CheckoutRequestID": stk.checkout_request_id,
                        "ResultCode": api.STK_STILL_PROCESSING_RESULT,
                        "ResultDesc": "The transaction is still under processing",
                    }
                )
            return _error(500, api.STK_STILL_PROCESSING, "The transaction is being processed")
        return web.json_response(
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": stk.merchant_request_id,
                "CheckoutRequestID": stk.checkout_request_id,
                "ResultCode": str(stk.result_code),
                "ResultDesc": stk.result_desc,
            }
        )

    # --- B2C, B2Pochi, B2B -----------------------------------------------------------------------------

    async def _payout(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        models: dict[str, type[BaseModel]] = {
            api.B2C_PATH: B2CRequest,
            api.B2POCHI_PATH: B2PochiRequest,
            api.B2B_PATH: B2BRequest,
        }
        model = models[request.path]
        b2b = request.path == api.B2B_PATH
        if b2b:
            # Daraja assigns B2B ids itself: an OriginatorConversationID sent anyway is ignored (and cannot
            # make a resend a duplicate).
            body = {k: v for k, v in body.items() if k != "OriginatorConversationID"}
        invalid = _validate(model, body)
        if invalid is not None:
            return invalid
        originator = _daraja_originator() if b2b else str(body["OriginatorConversationID"])
        behaviour = self.behaviour_for(request.path, body)
        if behaviour.http_error is not None:
            return _error(behaviour.http_error, f"{behaviour.http_error}.003.01", "Simulated failure")
        existing = self.payouts.get(originator)
        if existing is not None:
            return _error(500, api.DUPLICATE_ORIGINATOR, "Duplicate OriginatorConversationID.")
        initiator_ok = self._initiator_ok(str(body["SecurityCredential"]))
        code: int | str
        success = behaviour.outcome == "success" and initiator_ok
        if not initiator_ok:
            code, desc = INITIATOR_INVALID
        elif success:
            code, desc = 0, PROCESSED
        else:
            code = behaviour.result_code if behaviour.result_code is not None else INITIATOR_INVALID[0]
            desc = behaviour.result_desc or (
                INSUFFICIENT_FUNDS[1] if str(code) == str(INSUFFICIENT_FUNDS[0]) else INITIATOR_INVALID[1]
            )
        payout = SimPayout(
            originator_conversation_id=originator,
            conversation_id=f"AG_{dt.datetime.now(NAIROBI):%Y%m%d}_{secrets.token_hex(10)}",
            result_url=str(body["ResultURL"]),
            path=request.path,
            command=str(body["CommandID"]),
            amount=int(body["Amount"]),
            party_a=str(body["PartyA"]),
            party_b=str(body["PartyB"]),
            success=success,
            result_code=code,
            result_desc=desc,
            receipt=_receipt() if success else "",
            completed_at=dt.datetime.now(NAIROBI),
        )
        self.payouts[originator] = payout
        result = self._payout_result(payout, behaviour)
        timeout = self._queue_timeout(payout)
        self._schedule_callbacks(
            behaviour, str(body["ResultURL"]), result, timeout_url=str(body["QueueTimeOutURL"]), stale=timeout
        )
        if behaviour.lose_response:
            return _error(503, "503.001.01", "Service Unavailable")
        if behaviour.callback == "out_of_order":
            await asyncio.sleep(self._delay(behaviour))
        return web.json_response(
            {
                "ConversationID": "" if behaviour.blank_conversation_id else payout.conversation_id,
                "OriginatorConversationID": originator,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )

    def _initiator_ok(self, credential: str) -> bool:
        assert self._key is not None
        try:
            return decrypt_security_credential(credential, self._key) == self.initiator_password
        except (ValueError, UnicodeDecodeError):
            return False

    def _schedule_callbacks(
        self,
        behaviour: Behaviour,
        url: str,
        payload: dict[str, Any],
        *,
        timeout_url: str | None,
        stale: dict[str, Any] | None = None,
    ) -> None:
        delay = self._delay(behaviour)
        if behaviour.callback == "once":
            self._schedule(delay, url, payload)
        elif behaviour.callback == "twice":
            self._schedule(delay, url, payload)
            self._schedule(delay * 2 + 0.01, url, payload)
        elif behaviour.callback == "out_of_order":
            # The result overtakes the synchronous answer; a stale queue-timeout notice follows it.
            self._schedule(0, url, payload)
            if timeout_url is not None and stale is not None:
                self._schedule(delay * 2 + 0.01, timeout_url, stale)
            else:
                self._schedule(delay * 2 + 0.01, url, payload)

    def _payout_result(self, payout: SimPayout, behaviour: Behaviour) -> dict[str, Any]:
        code: int | str = payout.result_code
        desc = payout.result_desc
        if behaviour.callback_code is not None:
            code = behaviour.callback_code
            desc = NON_VERDICTS.get(int(code), desc) if str(code).isdigit() else desc
        if behaviour.callback_code is not None and str(code) != "0":
            result: dict[str, Any] = {
                "ResultType": 0,
                "ResultCode": str(code) if behaviour.code_as_string else code,
                "ResultDesc": desc,
                "OriginatorConversationID": payout.originator_conversation_id,
                "ConversationID": payout.conversation_id,
                "TransactionID": _receipt(),
            }
            return {"Result": result}
        code = str(code) if behaviour.code_as_string else code
        result = {
            "ResultType": 0,
            "ResultCode": code,
            "ResultDesc": desc,
            "OriginatorConversationID": payout.originator_conversation_id,
            "ConversationID": payout.conversation_id,
            "TransactionID": payout.receipt or _receipt(),
        }
        amount = behaviour.callback_amount if behaviour.callback_amount is not None else payout.amount
        if payout.success:
            stamp = f"{payout.completed_at:%d.%m.%Y %H:%M:%S}"
            if payout.path == api.B2B_PATH:
                params: list[dict[str, Any]] = [
                    {"Key": "DebitAccountBalance", "Value": "{Amount={CurrencyCode=KES, MinimumAmount=0}}"},
                    {"Key": "Amount", "Value": float(amount)},
                    {"Key": "DebitPartyAffectedAccountBalance", "Value": "Working Account|KES|0.00|0.00"},
                    {"Key": "TransCompletedTime", "Value": int(f"{payout.completed_at:%Y%m%d%H%M%S}")},
                    {"Key": "DebitPartyCharges"},
                    {"Key": "ReceiverPartyPublicName", "Value": f"{payout.party_b} - Simulated Merchant"},
                    {"Key": "Currency", "Value": "KES"},
                    {"Key": "InitiatorAccountCurrentBalance", "Value": "{Amount={CurrencyCode=KES}}"},
                ]
            else:
                params = [
                    {"Key": "TransactionAmount", "Value": float(amount)},
                    {"Key": "TransactionReceipt", "Value": payout.receipt},
                    {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                    {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -4510.00},
                    {"Key": "ReceiverPartyPublicName", "Value": f"{payout.party_b} - Simulated Customer"},
                    {"Key": "TransactionCompletedDateTime", "Value": stamp},
                    {"Key": "B2CUtilityAccountAvailableFunds", "Value": 10116.00},
                    {"Key": "B2CWorkingAccountAvailableFunds", "Value": 900000.00},
                ]
            result["ResultParameters"] = {"ResultParameter": params}
        result["ReferenceData"] = {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "https://internal"}}
        return {"Result": result}

    def _queue_timeout(self, payout: SimPayout) -> dict[str, Any]:
        return {
            "Result": {
                "ResultType": 1,
                "ResultCode": "1037",
                "ResultDesc": "DS timeout user cannot be reached",
                "OriginatorConversationID": payout.originator_conversation_id,
                "ConversationID": payout.conversation_id,
                "TransactionID": "",
            }
        }

    # --- transaction status ----------------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        invalid = _validate(TransactionStatusRequest, body)
        if invalid is not None:
            return invalid
        behaviour = self.behaviour_for(request.path, body)
        if behaviour.http_error is not None:
            return _error(behaviour.http_error, f"{behaviour.http_error}.003.01", "Simulated failure")
        if not self._initiator_ok(str(body["SecurityCredential"])):
            code, desc = INITIATOR_INVALID
        else:
            code, desc = 0, "The service request has been accepted successfully."
        conversation = f"AG_{dt.datetime.now(NAIROBI):%Y%m%d}_{secrets.token_hex(10)}"
        originator = str(uuid.uuid4())
        payout = self._find_payout(
            str(body.get("OriginalConversationID", "")), str(body.get("TransactionID", ""))
        )
        result: dict[str, Any] = {
            "ResultType": 0,
            "ResultCode": code,
            "ResultDesc": desc,
            "OriginatorConversationID": originator,
            "ConversationID": conversation,
            "TransactionID": secrets.token_hex(5).upper(),
        }
        if code == 0 and payout is None:
            result["ResultCode"], result["ResultDesc"] = NOT_FOUND
        elif code == 0 and payout is not None:
            result["ResultParameters"] = {
                "ResultParameter": [
                    {"Key": "DebitPartyName", "Value": f"{payout.party_a} - Ongea Pesa"},
                    {"Key": "CreditPartyName", "Value": f"{payout.party_b} - Simulated"},
                    {"Key": "OriginatorConversationID", "Value": payout.originator_conversation_id},
                    {"Key": "InitiatedTime", "Value": int(f"{payout.completed_at:%Y%m%d%H%M%S}")},
                    {"Key": "DebitAccountType", "Value": "Utility Account"},
                    {"Key": "DebitPartyCharges"},
                    {"Key": "TransactionReason"},
                    {"Key": "ReasonType", "Value": payout.command},
                    {"Key": "TransactionStatus", "Value": "Completed" if payout.success else "Failed"},
                    {"Key": "FinalisedTime", "Value": int(f"{payout.completed_at:%Y%m%d%H%M%S}")},
                    {"Key": "Amount", "Value": float(payout.amount)},
                    {"Key": "ConversationID", "Value": payout.conversation_id},
                    {"Key": "ReceiptNo", "Value": payout.receipt},
                    {"Key": "ResultCode", "Value": payout.result_code},
                    {"Key": "ResultDesc", "Value": payout.result_desc},
                ]
            }
        if behaviour.callback != "none":
            self._schedule(self._delay(behaviour), str(body["ResultURL"]), {"Result": result})
        return web.json_response(
            {
                "ConversationID": conversation,
                "OriginatorConversationID": originator,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )

    def _find_payout(self, originator: str, receipt: str) -> SimPayout | None:
        """By OriginatorConversationID (B2C, B2Pochi), Daraja's ConversationID (B2B) or receipt."""
        if originator and originator in self.payouts:
            return self.payouts[originator]
        if originator:
            for payout in self.payouts.values():
                if payout.conversation_id == originator:
                    return payout
        if receipt:
            for payout in self.payouts.values():
                if payout.receipt == receipt:
                    return payout
        return None

    # --- C2B: register URLs, simulate a payment into the paybill, Pull Transactions ---------------------

    async def _c2b_register(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        fields = ("ShortCode", "ResponseType", "ConfirmationURL", "ValidationURL")
        missing = [f for f in fields if not str(body.get(f, "")).strip()]
        if missing:
            return _error(400, "400.002.02", f"Bad Request - Invalid {missing[0]}")
        if body["ResponseType"] not in ("Completed", "Cancelled"):
            return _error(400, "400.002.02", "Bad Request - Invalid ResponseType")
        shortcode = str(body["ShortCode"])
        if self.c2b_register_once and shortcode in self.c2b_urls:
            return _error(500, "500.003.1001", "Urls are already registered")
        self.c2b_urls[shortcode] = {f: str(body[f]) for f in fields[1:]}
        return web.json_response(
            {
                "OriginatorCoversationID": str(uuid.uuid4()),
                "ResponseCode": "0",
                "ResponseDescription": "Success",
            }
        )

    async def _c2b_simulate(self, request: web.Request) -> web.Response:
        """Daraja sandbox's C2B simulate: `{ShortCode, CommandID, Amount, Msisdn, BillRefNumber}`."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        shortcode = str(body.get("ShortCode", ""))
        if shortcode not in self.c2b_urls:
            return _error(400, "400.002.02", "Bad Request - Invalid ShortCode")
        try:
            amount = Decimal(str(body.get("Amount")))
        except ArithmeticError:
            return _error(400, "400.002.02", "Bad Request - Invalid Amount")
        if not amount.is_finite() or amount <= 0:
            return _error(400, "400.002.02", "Bad Request - Invalid Amount")
        payment = await self.c2b_pay(
            shortcode, amount, str(body.get("BillRefNumber", "")), str(body.get("Msisdn", "254708374149"))
        )
        return web.json_response(
            {
                "OriginatorCoversationID": payment.trans_id,
                "ResponseCode": "0",
                "ResponseDescription": "Accept the service request successfully.",
            }
        )

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
        """A person pays `amount` into `shortcode` with `bill_ref` (as a bank app does): validation (when
        enabled; a rejection sends the money back), then the confirmation. `deliver=False`: the money
        arrives but the confirmation is lost (Pull Transactions still lists it)."""
        payment = SimC2b(_receipt(), shortcode, amount, bill_ref, msisdn, dt.datetime.now(NAIROBI))
        urls = self.c2b_urls.get(shortcode)
        body = {
            "TransactionType": transaction_type,
            "TransID": payment.trans_id,
            "TransTime": f"{payment.at:%Y%m%d%H%M%S}",
            "TransAmount": f"{amount:.2f}",
            "BusinessShortCode": shortcode,
            "BillRefNumber": bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": "",
            "ThirdPartyTransID": "",
            "MSISDN": self._c2b_msisdn(msisdn),
            "FirstName": first_name,
        }
        if urls is not None and self.c2b_validation:
            answer = await self._post_now(urls["ValidationURL"], body)
            payment.validated = str((answer or {}).get("ResultCode", ""))
            if answer is None:  # no answer within the time: Safaricom applies the ResponseType
                accepted = urls["ResponseType"] == "Completed"
            else:
                accepted = payment.validated == "0"
            if not accepted:
                return payment  # the money goes back to the payer
        self.c2b_payments.append(payment)
        if urls is not None and deliver:
            await self._post_now(urls["ConfirmationURL"], body)
            payment.confirmed = True
        return payment

    def _c2b_msisdn(self, msisdn: str) -> str:
        if self.c2b_msisdn_form == "plain":
            return msisdn
        if self.c2b_msisdn_form == "hashed":
            return hashlib.sha256(msisdn.encode()).hexdigest()
        return f"{msisdn[:6]}****{msisdn[-2:]}"

    async def _post_now(self, url: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Post a callback now and return its JSON answer (None when it fails or takes over 8 s)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        now = asyncio.get_running_loop().time()
        try:
            async with self._session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=8)) as resp:
                text = await resp.text()
                self.deliveries.append(Delivery(url, payload, resp.status, None, now))
                answer = json.loads(text)
                return answer if isinstance(answer, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.deliveries.append(Delivery(url, payload, None, f"{type(exc).__name__}: {exc}", now))
            return None

    async def _pull_transactions(self, request: web.Request) -> web.Response:
        """Payments into a shortcode in a time window (C2B and paid STK pushes), 48 hours back at most."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            start = dt.datetime.strptime(str(body["StartDate"]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=NAIROBI)
            end = dt.datetime.strptime(str(body["EndDate"]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=NAIROBI)
            offset = int(str(body.get("OffSetValue", "0")))
        except (KeyError, ValueError):
            return _error(400, "400.002.02", "Bad Request - Invalid StartDate")
        shortcode = str(body.get("ShortCode", ""))
        end = end + dt.timedelta(seconds=1)
        lines: list[dict[str, Any]] = [
            {
                "transactionId": p.trans_id,
                "trxDate": p.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "msisdn": self._c2b_msisdn(p.msisdn),
                "sender": "UNKNOWN",
                "transactiontype": "c2b-pay-bill-debit",
                "billreference": p.bill_ref,
                "amount": f"{p.amount:.2f}",
                "organizationname": "Ongea Pesa",
            }
            for p in self.c2b_payments
            if p.shortcode == shortcode and start <= p.at <= end
        ]
        lines += [
            {
                "transactionId": s.receipt,
                "trxDate": s.paid_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "msisdn": self._c2b_msisdn(s.phone),
                "sender": "UNKNOWN",
                "transactiontype": "c2b-pay-bill-debit",
                "billreference": s.account_reference,
                "amount": f"{s.amount}.00",
                "organizationname": "Ongea Pesa",
            }
            for s in self.stk.values()
            if s.success
            and s.paid_at is not None
            and shortcode == self.shortcode
            and start <= s.paid_at <= end
        ]
        page = lines[offset : offset + 100]
        return web.json_response(
            {
                "ResponseRefID": str(uuid.uuid4()),
                "ResponseCode": "1000",
                "ResponseMessage": "Success",
                "Response": [page] if page else [],
            }
        )

    # --- HTTP control endpoints ------------------------------------------------------------------------

    async def _control_behaviour(self, request: web.Request) -> web.Response:
        """`{"default": {...}, "rules": [{"behaviour": {...}, "amount": 13, "times": 1}, ...]}`."""
        try:
            data = await request.json()
            if "default" in data:
                self.default = Behaviour.from_json(data["default"])
            for rule in data.get("rules", []):
                rule = dict(rule)
                self.add_rule(Behaviour.from_json(rule.pop("behaviour", {})), **rule)
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            return _error(400, "400.002.02", f"Bad Request - {exc}")
        return web.json_response({"rules": len(self.rules)})

    async def _control_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _control_requests(self, _request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in self.received], dumps=_dumps)

    async def _control_payouts(self, _request: web.Request) -> web.Response:
        """Every payout accepted, with the ids it was given, and how many tokens were issued and refused."""
        return web.json_response(
            {
                "payouts": [asdict(p) for p in self.payouts.values()],
                "tokens_issued": self.tokens_issued,
                "token_refusals": self.token_refusals,
            },
            dumps=_dumps,
        )

    async def _control_callbacks(self, _request: web.Request) -> web.Response:
        return web.json_response([asdict(d) for d in self.deliveries], dumps=_dumps)

    async def _control_certificate(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.certificate, content_type="application/x-pem-file")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {
            "requestId": f"{secrets.randbelow(99999)}-{secrets.randbelow(10**7)}-1",
            "errorCode": code,
            "errorMessage": message,
        },
        status=status,
    )


def _validate(model: type[BaseModel], body: dict[str, Any]) -> web.Response | None:
    """Daraja answers a missing or malformed field with `400.002.02 Bad Request - Invalid <Field>`."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        loc = exc.errors()[0].get("loc", ("body",))
        return _error(400, "400.002.02", f"Bad Request - Invalid {loc[0] if loc else 'body'}")
    return None


def _daraja_originator() -> str:
    """An OriginatorConversationID as Daraja assigns one (e.g. `16740-34861180-1`)."""
    return f"{secrets.randbelow(90000) + 10000}-{secrets.randbelow(9 * 10**7) + 10**7}-1"


def _receipt() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "S" + "".join(secrets.choice(alphabet) for _ in range(9))
