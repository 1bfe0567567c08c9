"""The Daraja client (aiohttp): OAuth with one shared token cache, and the endpoints Ongea Pesa uses.

The client never retries a payment by itself (the outbox worker owns retries and their backoff); it only
classifies failures: transient (network, timeout, 429, 5xx) may be retried with the same
`OriginatorConversationID`, a rejection is final, and a duplicate-id answer means "already sent".
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from ledger.daraja.credentials import nairobi_timestamp, security_credential, stk_password
from ledger.daraja.models import (
    AcceptedResponse,
    B2BRequest,
    B2CRequest,
    B2PochiRequest,
    ErrorResponse,
    StkPushRequest,
    StkPushResponse,
    StkQueryRequest,
    StkQueryResponse,
    TokenResponse,
    TransactionStatusRequest,
)

log = logging.getLogger(__name__)

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_URL = "https://api.safaricom.co.ke"
SANDBOX_INITIATOR_PASSWORD = "Safaricom999!*!"

OAUTH_PATH = "/oauth/v1/generate"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
B2C_PATH = "/mpesa/b2c/v3/paymentrequest"
B2POCHI_PATH = "/mpesa/b2pochi/v1/paymentrequest"
B2B_PATH = "/mpesa/b2b/v1/paymentrequest"
STATUS_PATH = "/mpesa/transactionstatus/v1/query"

# Daraja's answer to an STK query while the customer has not answered the prompt yet.
STK_STILL_PROCESSING = "500.001.1001"

M = TypeVar("M", bound=BaseModel)


class DarajaError(Exception):
    """Daraja did not accept a request."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class DarajaTransientError(DarajaError):
    """Network trouble, a timeout, 429 or 5xx: the request may or may not have arrived; retry it."""

    transient = True


class DarajaAuthError(DarajaTransientError):
    """Our own credentials or configuration were refused (OAuth, missing certificate).

    Never a verdict on a payment: the request was not sent, and refunding because of our own
    misconfiguration would be wrong, so callers retry (and park) instead.
    """


class DarajaRejected(DarajaError):
    """A definite refusal (4xx): the request was not accepted and retrying it unchanged will not help."""


class DarajaDuplicate(DarajaRejected):
    """The `OriginatorConversationID` was already used: the earlier request was accepted."""


@dataclass(frozen=True)
class DarajaConfig:
    """Everything the client needs; built from Settings by `config_from_settings`."""

    base_url: str
    consumer_key: str
    consumer_secret: str
    shortcode: str
    passkey: str
    b2c_shortcode: str
    initiator_name: str
    initiator_password: str
    certificate: bytes | None
    stk_transaction_type: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"] = "CustomerPayBillOnline"
    request_timeout: float = 30.0
    token_refresh_after: float = 50 * 60


@dataclass
class _Token:
    value: str
    refresh_at: float


@dataclass
class TokenCache:
    """One access token per process, fetched by one caller at a time (single flight).

    Each new Daraja token invalidates the previous one, so many workers fetching their own tokens would
    keep knocking each other out; they share this cache instead, refreshed ~10 minutes before the hour.
    """

    _token: _Token | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetches: int = 0

    async def get(self, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> str:
        token = self._token
        if token is not None and time.monotonic() < token.refresh_at:
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and time.monotonic() < token.refresh_at:
                return token.value
            value, lifetime = await fetch()
            self.fetches += 1
            self._token = _Token(value, time.monotonic() + lifetime)
            return value

    def invalidate(self, value: str) -> None:
        """Drop `value` if it is still the cached token (a newer one fetched meanwhile is kept)."""
        if self._token is not None and self._token.value == value:
            self._token = None


def whole_shillings(amount: Decimal) -> int:
    """Daraja moves whole shillings only; a fractional amount is a rejection, never a silent rounding."""
    if amount != amount.to_integral_value() or amount <= 0:
        raise DarajaRejected(f"M-Pesa pays positive whole shillings only, not {amount}")
    return int(amount)


def msisdn(phone: str) -> str:
    """07XXXXXXXX / +2547XXXXXXXX / 2547XXXXXXXX -> 2547XXXXXXXX (the form Daraja wants)."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("0") and len(digits) == 10:
        return "254" + digits[1:]
    if len(digits) == 9 and digits[0] in "17":
        return "254" + digits
    return digits


class DarajaClient:
    """Typed calls to Daraja over one aiohttp session."""

    def __init__(
        self,
        config: DarajaConfig,
        session: aiohttp.ClientSession | None = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        self.config = config
        self._session = session
        self._own_session = session is None
        self.tokens = token_cache or TokenCache()
        self._credential: str | None = None

    async def __aenter__(self) -> DarajaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.request_timeout)
            )
        return self._session

    def security_credential(self) -> str:
        if self._credential is None:
            if self.config.certificate is None:
                raise DarajaAuthError("no Daraja certificate configured (DARAJA_CERTIFICATE_PATH)")
            self._credential = security_credential(self.config.initiator_password, self.config.certificate)
        return self._credential

    # --- OAuth -----------------------------------------------------------------------------------------

    async def _fetch_token(self) -> tuple[str, float]:
        pair = f"{self.config.consumer_key}:{self.config.consumer_secret}"
        basic = base64.b64encode(pair.encode()).decode()
        url = self.config.base_url.rstrip("/") + OAUTH_PATH
        try:
            async with self.session.get(
                url, params={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
            ) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise _classify(resp.status, text, "OAuth")
                token = TokenResponse.model_validate_json(text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DarajaTransientError(f"OAuth: {type(exc).__name__}: {exc}") from exc
        except ValidationError as exc:
            raise DarajaTransientError(f"OAuth: unreadable answer: {exc}") from exc
        lifetime = min(self.config.token_refresh_after, max(token.expires_in - 600, token.expires_in / 2))
        return token.access_token, lifetime

    async def access_token(self) -> str:
        return await self.tokens.get(self._fetch_token)

    # --- plumbing --------------------------------------------------------------------------------------

    async def _post(self, path: str, body: BaseModel, answer: type[M]) -> M:
        url = self.config.base_url.rstrip("/") + path
        payload = body.model_dump(mode="json")
        for attempt in (1, 2):
            token = await self.access_token()
            try:
                async with self.session.post(
                    url, json=payload, headers={"Authorization": f"Bearer {token}"}
                ) as resp:
                    text = await resp.text()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise DarajaTransientError(f"{path}: {type(exc).__name__}: {exc}") from exc
            if status == 401 and attempt == 1:
                # Another process may have fetched a newer token, which invalidated ours: fetch once more.
                self.tokens.invalidate(token)
                continue
            if status != 200:
                raise _classify(status, text, path)
            try:
                return answer.model_validate_json(text)
            except ValidationError as exc:
                raise DarajaTransientError(f"{path}: unreadable answer: {text[:200]}", status=status) from exc
        raise DarajaTransientError(f"{path}: access token refused twice", status=401)

    def _stk_auth(self) -> tuple[str, str]:
        timestamp = nairobi_timestamp()
        return stk_password(self.config.shortcode, self.config.passkey, timestamp), timestamp

    # --- endpoints -------------------------------------------------------------------------------------

    async def stk_push(
        self, *, amount: Decimal, phone: str, callback_url: str, account_reference: str, description: str
    ) -> StkPushResponse:
        password, timestamp = self._stk_auth()
        request = StkPushRequest(
            BusinessShortCode=self.config.shortcode,
            Password=password,
            Timestamp=timestamp,
            TransactionType=self.config.stk_transaction_type,
            Amount=whole_shillings(amount),
            PartyA=msisdn(phone),
            PartyB=self.config.shortcode,
            PhoneNumber=msisdn(phone),
            CallBackURL=callback_url,
            AccountReference=account_reference[:12],
            TransactionDesc=description[:13],
        )
        answer = await self._post(STK_PUSH_PATH, request, StkPushResponse)
        _require_accepted(answer.ResponseCode, answer.ResponseDescription, STK_PUSH_PATH)
        return answer

    async def stk_query(self, checkout_request_id: str) -> StkQueryResponse:
        """The truth about an STK push; raises DarajaTransientError while the customer has not answered."""
        password, timestamp = self._stk_auth()
        request = StkQueryRequest(
            BusinessShortCode=self.config.shortcode,
            Password=password,
            Timestamp=timestamp,
            CheckoutRequestID=checkout_request_id,
        )
        return await self._post(STK_QUERY_PATH, request, StkQueryResponse)

    async def b2c(
        self,
        *,
        originator_conversation_id: str,
        amount: Decimal,
        phone: str,
        result_url: str,
        timeout_url: str,
        remarks: str,
        occasion: str = "",
        command: Literal["BusinessPayment", "SalaryPayment", "PromotionPayment"] = "BusinessPayment",
    ) -> AcceptedResponse:
        request = B2CRequest(
            OriginatorConversationID=originator_conversation_id,
            InitiatorName=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            CommandID=command,
            Amount=whole_shillings(amount),
            PartyA=self.config.b2c_shortcode,
            PartyB=msisdn(phone),
            Remarks=remarks[:100],
            QueueTimeOutURL=timeout_url,
            ResultURL=result_url,
            Occassion=occasion[:100],
        )
        return await self._accepted(B2C_PATH, request)

    async def b2pochi(
        self,
        *,
        originator_conversation_id: str,
        amount: Decimal,
        phone: str,
        result_url: str,
        timeout_url: str,
        remarks: str,
        occasion: str = "",
    ) -> AcceptedResponse:
        request = B2PochiRequest(
            OriginatorConversationID=originator_conversation_id,
            InitiatorName=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            CommandID="BusinessPayToPochi",
            Amount=whole_shillings(amount),
            PartyA=self.config.b2c_shortcode,
            PartyB=msisdn(phone),
            Remarks=remarks[:100],
            QueueTimeOutURL=timeout_url,
            ResultURL=result_url,
            Occasion=occasion[:100],
        )
        return await self._accepted(B2POCHI_PATH, request)

    async def b2b(
        self,
        *,
        originator_conversation_id: str,
        command: Literal["BusinessPayBill", "BusinessBuyGoods"],
        amount: Decimal,
        party_b: str,
        account_reference: str,
        result_url: str,
        timeout_url: str,
        remarks: str,
        requester: str = "",
    ) -> AcceptedResponse:
        request = B2BRequest(
            OriginatorConversationID=originator_conversation_id,
            Initiator=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            CommandID=command,
            SenderIdentifierType="4",
            RecieverIdentifierType="4",
            Amount=whole_shillings(amount),
            PartyA=self.config.b2c_shortcode,
            PartyB=party_b,
            AccountReference=account_reference[:13],
            Requester=msisdn(requester) if requester else "",
            Remarks=remarks[:100],
            QueueTimeOutURL=timeout_url,
            ResultURL=result_url,
        )
        return await self._accepted(B2B_PATH, request)

    async def transaction_status(
        self,
        *,
        result_url: str,
        timeout_url: str,
        originator_conversation_id: str = "",
        transaction_id: str = "",
        remarks: str = "reconciliation",
    ) -> AcceptedResponse:
        """Ask M-Pesa what became of a payout; the answer arrives at `result_url`."""
        request = TransactionStatusRequest(
            Initiator=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            TransactionID=transaction_id,
            OriginalConversationID=originator_conversation_id,
            PartyA=self.config.b2c_shortcode,
            IdentifierType="4",
            ResultURL=result_url,
            QueueTimeOutURL=timeout_url,
            Remarks=remarks[:100],
        )
        return await self._accepted(STATUS_PATH, request)

    async def _accepted(self, path: str, request: BaseModel) -> AcceptedResponse:
        answer = await self._post(path, request, AcceptedResponse)
        _require_accepted(answer.ResponseCode, answer.ResponseDescription, path)
        return answer


def _require_accepted(code: str, description: str, path: str) -> None:
    if code != "0":
        if "duplicate" in description.lower():
            raise DarajaDuplicate(f"{path}: {description}", status=200, error_code=code)
        raise DarajaRejected(f"{path}: {code} {description}", status=200, error_code=code)


def _classify(status: int, text: str, what: str) -> DarajaError:
    try:
        err = ErrorResponse.model_validate_json(text)
        code, message = err.errorCode, err.errorMessage or text[:200]
    except ValidationError:
        code, message = "", text[:200]
    detail = f"{what}: HTTP {status} {code} {message}".strip()
    if status == 429 or status >= 500:
        return DarajaTransientError(detail, status=status, error_code=code)
    if "duplicate" in message.lower():
        return DarajaDuplicate(detail, status=status, error_code=code)
    if what == "OAuth":
        return DarajaAuthError(detail, status=status, error_code=code)
    return DarajaRejected(detail, status=status, error_code=code)
