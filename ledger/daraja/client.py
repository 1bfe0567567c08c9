"""The Daraja client (aiohttp): OAuth with one shared token, and the endpoints Ongea Pesa uses.

The client never retries a payment that may have reached M-Pesa (the outbox worker owns those retries); it
classifies failures, by Daraja's `errorCode` before its HTTP status: a token error is refreshed and retried
once (never a verdict on the payment), `500.002.1001` means "already sent", throttling (HTTP 500 with
`500.003.02` spike arrest or `500.003.03` quota violation, or a 429) means not accepted and is retried here
with backoff, on the pace when one is given, for every kind of request; other transient errors (network,
timeout, other 5xx) may be retried with the same `OriginatorConversationID`, and a rejection is final.
A transient error says whether the request may have reached M-Pesa (`maybe_sent`): B2B, which has no
`OriginatorConversationID` to make a resend harmless, must never be resent after one that may have.
Values longer than Daraja takes are refused, never cut.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from ledger.daraja.credentials import nairobi_timestamp, security_credential, stk_password
from ledger.daraja.models import (
    AcceptedResponse,
    AccountBalanceRequest,
    B2BRequest,
    B2CRequest,
    B2PochiRequest,
    ErrorResponse,
    ReversalRequest,
    StkPushRequest,
    StkPushResponse,
    StkQueryRequest,
    StkQueryResponse,
    TokenResponse,
    TransactionStatusRequest,
)
from ledger.daraja.tokens import TokenCache, TokenStore
from ledger.pace import Pace

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
BALANCE_PATH = "/mpesa/accountbalance/v1/query"
REVERSAL_PATH = "/mpesa/reversal/v1/request"

# Daraja's answer to an STK query while the customer has not answered the prompt yet (HTTP 500); some
# answer HTTP 200 with ResultCode 4999 instead.
STK_STILL_PROCESSING = "500.001.1001"
STK_STILL_PROCESSING_RESULT = "4999"
# An invalid or expired access token, as each API reports it (HTTP 404, 401 or 400).
TOKEN_ERROR_CODES = frozenset({"404.001.03", "401.002.01", "400.003.01", "404.001.04"})
# A reused OriginatorConversationID (HTTP 500): the earlier request was accepted.
DUPLICATE_ORIGINATOR = "500.002.1001"
# Throttling (HTTP 500): spike arrest ("System is busy") and quota violation. The request was not accepted.
THROTTLE_CODES = frozenset({"500.003.02", "500.003.03"})
# Remarks and Occasion: at most 100 characters (refused, never cut).
REMARKS_MAX = 100
# Daraja's limits on references (ledger.md): longer values are refused, never cut.
B2B_ACCOUNT_REFERENCE_MAX = 13
STK_ACCOUNT_REFERENCE_MAX = 12
STK_TRANSACTION_DESC_MAX = 13

# Safaricom refuses callback URLs that contain any of these, in any case (ledger.md, server.md).
CALLBACK_URL_FORBIDDEN = ("m-pesa", "mpesa", "safaricom", "exec", "exe", "cmd", "sql", "query")

M = TypeVar("M", bound=BaseModel)


def forbidden_word(text: str) -> str | None:
    """The first word Safaricom refuses in a callback URL that `text` contains, or None."""
    lowered = text.lower()
    return next((word for word in CALLBACK_URL_FORBIDDEN if word in lowered), None)


class DarajaError(Exception):
    """Daraja did not accept a request."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class DarajaTransientError(DarajaError):
    """Network trouble, a timeout, 429 or 5xx: retry it (with the same id: only where Daraja has one).

    `maybe_sent` is False only when the request certainly did not reach M-Pesa (connection refused, 429,
    a token refused twice, our own configuration).
    """

    transient = True

    def __init__(
        self, message: str, *, status: int | None = None, error_code: str = "", maybe_sent: bool = True
    ) -> None:
        super().__init__(message, status=status, error_code=error_code)
        self.maybe_sent = maybe_sent


class DarajaThrottled(DarajaTransientError):
    """Daraja throttled the request (spike arrest, quota): not accepted, safe to send again, B2B included."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message, status=status, error_code=error_code, maybe_sent=False)


class DarajaAuthError(DarajaTransientError):
    """Our own credentials or configuration were refused (OAuth, a token refused twice, no certificate).

    Never a verdict on a payment: the request was not processed, and refunding because of our own
    misconfiguration would be wrong, so callers retry (and park) instead.
    """

    def __init__(self, message: str, *, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message, status=status, error_code=error_code, maybe_sent=False)


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
    shortcode: str  # STK push: the paybill, or the store number (head office) of a till
    passkey: str
    b2c_shortcode: str  # pays B2C and B2Pochi from its Utility account
    initiator_name: str
    initiator_password: str
    certificate: bytes | None
    b2b_shortcode: str = ""  # pays B2B from its Working account; "" = the B2C shortcode
    stk_till: str = ""  # set: STK pushes pay this till (CustomerBuyGoodsOnline, PartyB = till)
    request_timeout: float = 30.0
    token_refresh_after: float = 50 * 60
    throttle_retries: int = 6  # a throttled request is sent again up to this many times
    throttle_backoff: float = 0.5  # seconds before the first resend; doubled each time (with jitter)
    throttle_backoff_cap: float = 8.0

    @property
    def stk_transaction_type(self) -> Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]:
        return "CustomerBuyGoodsOnline" if self.stk_till else "CustomerPayBillOnline"

    @property
    def b2b_party_a(self) -> str:
        return self.b2b_shortcode or self.b2c_shortcode


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
        token_cache: TokenStore | None = None,
        pace: Pace | None = None,
    ) -> None:
        self.config = config
        self.pace = pace  # the process's pace: a resend after throttling takes a slot of it
        self._session = session
        self._own_session = session is None
        self.tokens: TokenStore = token_cache or TokenCache()
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

    async def _fetch_token(self) -> tuple[str, float, float]:
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
            raise DarajaAuthError(f"OAuth: {type(exc).__name__}: {exc}") from exc
        except ValidationError as exc:
            raise DarajaAuthError(f"OAuth: unreadable answer: {exc}") from exc
        lifetime = float(token.expires_in)
        refresh_in = min(self.config.token_refresh_after, max(lifetime - 600, lifetime / 2))
        return token.access_token, refresh_in, lifetime

    async def access_token(self) -> str:
        return await self.tokens.get(self._fetch_token)

    # --- plumbing --------------------------------------------------------------------------------------

    async def _post(self, path: str, body: BaseModel, answer: type[M]) -> M:
        """Send, sending again (with backoff, on the pace) while Daraja throttles: it accepted nothing."""
        for resend in range(self.config.throttle_retries + 1):
            try:
                return await self._post_once(path, body, answer)
            except DarajaThrottled as exc:
                if resend == self.config.throttle_retries:
                    raise
                delay = min(self.config.throttle_backoff * 2**resend, self.config.throttle_backoff_cap)
                log.warning("%s throttled (%s): sending again in %.1f s", path, exc.error_code, delay)
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                if self.pace is not None:
                    await self.pace.wait()
        raise AssertionError("unreachable: the last resend returns or raises")

    async def _post_once(self, path: str, body: BaseModel, answer: type[M]) -> M:
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
            except aiohttp.ClientConnectorError as exc:
                # No connection was made: the request certainly did not arrive.
                raise DarajaTransientError(f"{path}: {exc}", maybe_sent=False) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise DarajaTransientError(f"{path}: {type(exc).__name__}: {exc}") from exc
            if status != 200:
                error = _classify(status, text, path)
                if isinstance(error, DarajaAuthError) and attempt == 1:
                    # Refused for its token (a newer one, fetched by any process, invalidates ours):
                    # mark it stale, take the current one (or fetch it, one process at a time), retry once.
                    await self.tokens.invalidate(token)
                    continue
                if isinstance(error, DarajaAuthError):
                    log.error(
                        "%s: a fresh access token was refused too: is a process outside the shared token "
                        "store (daraja_tokens) fetching tokens for this Daraja app?",
                        path,
                    )
                raise error
            try:
                return answer.model_validate_json(text)
            except ValidationError as exc:
                raise DarajaTransientError(f"{path}: unreadable answer: {text[:200]}", status=status) from exc
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _stk_auth(self) -> tuple[str, str]:
        timestamp = nairobi_timestamp()
        return stk_password(self.config.shortcode, self.config.passkey, timestamp), timestamp

    # --- endpoints -------------------------------------------------------------------------------------

    async def stk_push(
        self, *, amount: Decimal, phone: str, callback_url: str, account_reference: str, description: str
    ) -> StkPushResponse:
        _fits("STK AccountReference", account_reference, STK_ACCOUNT_REFERENCE_MAX)
        _fits("STK TransactionDesc", description, STK_TRANSACTION_DESC_MAX)
        password, timestamp = self._stk_auth()
        request = StkPushRequest(
            BusinessShortCode=self.config.shortcode,
            Password=password,
            Timestamp=timestamp,
            TransactionType=self.config.stk_transaction_type,
            Amount=whole_shillings(amount),
            PartyA=msisdn(phone),
            # A till is paid through its store number (BusinessShortCode, which signs the password).
            PartyB=self.config.stk_till or self.config.shortcode,
            PhoneNumber=msisdn(phone),
            CallBackURL=callback_url,
            AccountReference=account_reference,
            TransactionDesc=description,
        )
        answer = await self._post(STK_PUSH_PATH, request, StkPushResponse)
        _require_accepted(answer.ResponseCode, answer.ResponseDescription, STK_PUSH_PATH)
        return answer

    async def stk_query(self, checkout_request_id: str) -> StkQueryResponse:
        """The truth about an STK push. While the customer has not answered, Daraja either answers HTTP 500
        `500.001.1001` (raised as DarajaTransientError with that `error_code`) or HTTP 200 with ResultCode
        4999 (returned): callers treat both as "still processing"."""
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
            Remarks=_fitted("Remarks", remarks),
            QueueTimeOutURL=timeout_url,
            ResultURL=result_url,
            Occassion=_fitted("Occassion", occasion),
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
            Remarks=_fitted("Remarks", remarks),
            QueueTimeOutURL=timeout_url,
            ResultURL=result_url,
            Occassion=_fitted("Occassion", occasion),
        )
        return await self._accepted(B2POCHI_PATH, request)

    async def b2b(
        self,
        *,
        command: Literal["BusinessPayBill", "BusinessBuyGoods"],
        amount: Decimal,
        party_b: str,
        account_reference: str,
        result_url: str,
        timeout_url: str,
        remarks: str,
        requester: str = "",
    ) -> AcceptedResponse:
        """B2B has no `OriginatorConversationID`: Daraja assigns the ids, and its answer's `ConversationID`
        is the only handle on the payout (record it before anything else). Paid from the B2B shortcode's
        Working account."""
        _fits("B2B AccountReference", account_reference, B2B_ACCOUNT_REFERENCE_MAX)
        request = B2BRequest(
            Initiator=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            CommandID=command,
            SenderIdentifierType="4",
            RecieverIdentifierType="4",
            Amount=whole_shillings(amount),
            PartyA=self.config.b2b_party_a,
            PartyB=party_b,
            AccountReference=account_reference,
            Requester=msisdn(requester) if requester else "",
            Remarks=_fitted("Remarks", remarks),
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
        b2b: bool = False,
    ) -> AcceptedResponse:
        """Ask M-Pesa what became of a payout; the answer arrives at `result_url`. For B2B,
        `originator_conversation_id` is Daraja's `ConversationID` and the B2B shortcode asks."""
        request = TransactionStatusRequest(
            Initiator=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            TransactionID=transaction_id,
            OriginalConversationID=originator_conversation_id,
            PartyA=self.config.b2b_party_a if b2b else self.config.b2c_shortcode,
            IdentifierType="4",
            ResultURL=result_url,
            QueueTimeOutURL=timeout_url,
            Remarks=_fitted("Remarks", remarks),
        )
        return await self._accepted(STATUS_PATH, request)

    async def account_balance(
        self, *, result_url: str, timeout_url: str, b2b: bool = False
    ) -> AcceptedResponse:
        """Ask for the float of the B2C shortcode (its Utility account pays B2C) or the B2B one (Working);
        the balances arrive at `result_url`."""
        request = AccountBalanceRequest(
            Initiator=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            PartyA=self.config.b2b_party_a if b2b else self.config.b2c_shortcode,
            IdentifierType="4",
            Remarks="float",
            QueueTimeOutURL=timeout_url,
            ResultURL=result_url,
        )
        return await self._accepted(BALANCE_PATH, request)

    async def reversal(
        self,
        *,
        receipt: str,
        amount: Decimal,
        result_url: str,
        timeout_url: str,
        remarks: str,
        b2b: bool = False,
    ) -> AcceptedResponse:
        """Ask M-Pesa to reverse a payment we made (by its receipt); the verdict arrives at `result_url`.
        `ReceiverParty` is the shortcode the money left, which it returns to."""
        request = ReversalRequest(
            Initiator=self.config.initiator_name,
            SecurityCredential=self.security_credential(),
            TransactionID=receipt,
            Amount=whole_shillings(amount),
            ReceiverParty=self.config.b2b_party_a if b2b else self.config.b2c_shortcode,
            RecieverIdentifierType="11",
            ResultURL=result_url,
            QueueTimeOutURL=timeout_url,
            Remarks=_fitted("Remarks", remarks),
        )
        return await self._accepted(REVERSAL_PATH, request)

    async def _accepted(self, path: str, request: BaseModel) -> AcceptedResponse:
        answer = await self._post(path, request, AcceptedResponse)
        _require_accepted(answer.ResponseCode, answer.ResponseDescription, path)
        return answer


def _require_accepted(code: str, description: str, path: str) -> None:
    if code != "0":
        if "duplicate" in description.lower():
            raise DarajaDuplicate(f"{path}: {description}", status=200, error_code=code)
        raise DarajaRejected(f"{path}: {code} {description}", status=200, error_code=code)


def _fits(name: str, value: str, limit: int) -> None:
    """Refuse, never cut: a bank account number cut short pays the wrong account."""
    if len(value) > limit:
        raise DarajaRejected(f"{name} is {len(value)} characters; Daraja takes at most {limit}")


def _fitted(name: str, value: str) -> str:
    _fits(name, value, REMARKS_MAX)
    return value


def _classify(status: int, text: str, what: str) -> DarajaError:
    """Daraja's `errorCode` decides before the HTTP status (a duplicate is a 500, a token error a 404)."""
    try:
        err = ErrorResponse.model_validate_json(text)
        code, message = err.errorCode, err.errorMessage or text[:200]
    except ValidationError:
        code, message = "", text[:200]
    detail = f"{what}: HTTP {status} {code} {message}".strip()
    if code in THROTTLE_CODES or status == 429:
        return DarajaThrottled(detail, status=status, error_code=code)
    if what == "OAuth":
        return DarajaAuthError(detail, status=status, error_code=code)
    if code in TOKEN_ERROR_CODES or status == 401:
        return DarajaAuthError(detail, status=status, error_code=code)
    if code == DUPLICATE_ORIGINATOR:
        return DarajaDuplicate(detail, status=status, error_code=code)
    if what == STK_PUSH_PATH and code == STK_STILL_PROCESSING:
        # On a push, 500.001.1001 is a refusal ("Wrong credentials", "Merchant does not exist", "Unable to
        # lock subscriber"): no prompt went to the phone. On a query it means "still processing".
        return DarajaRejected(detail, status=status, error_code=code)
    if status >= 500:
        return DarajaTransientError(detail, status=status, error_code=code)
    if "duplicate" in message.lower():
        return DarajaDuplicate(detail, status=status, error_code=code)
    return DarajaRejected(detail, status=status, error_code=code)
