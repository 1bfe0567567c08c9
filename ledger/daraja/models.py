"""Daraja request, response and callback bodies as pydantic models, field names exactly as Daraja spells them.

Outgoing requests forbid unknown fields so a typo cannot reach Safaricom; incoming bodies allow extra fields
and are lenient about what Daraja really sends: result codes as strings or numbers, `expires_in` as a string,
parameter items without a `Value`, a single item where a list is documented, and the API's own spellings
(`RecieverIdentifierType`, `Occassion`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ledger.models import LedgerError, to_amount


def _code(value: Any) -> str:
    """Result and response codes arrive as `0`, `"0"`, `"2001"` or `"R000002"`: keep one canonical string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueError("a result code is not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


Code = Annotated[str, BeforeValidator(_code)]

# A result code that is a verdict: "0", a whole number without a sign or leading zero ("1", "2001"), or a
# code word ("SFC_IC0003"). Anything else (blank, null, "0.0", "00", "-0", "[0]", a fraction) says nothing
# about whether the money moved: it is never read as a failure (a refund of a payout that was paid) nor as a
# success, and the payment is settled by a query instead.
_VERDICT = re.compile(r"0|[1-9][0-9]*|[A-Za-z][A-Za-z0-9_]*")


def is_verdict(code: str) -> bool:
    return _VERDICT.fullmatch(code) is not None


def _int(value: Any) -> int:
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("expected an integer or a numeric string")


LenientInt = Annotated[int, BeforeValidator(_int)]


def _listify(value: Any) -> Any:
    """Daraja sends a single object where a list is documented when there is only one item."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return value


class _Outgoing(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Incoming(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- OAuth -------------------------------------------------------------------------------------------------


class TokenResponse(_Incoming):
    access_token: str
    expires_in: LenientInt = 3599


# --- Errors (any endpoint, HTTP 4xx/5xx) ----------------------------------------------------------------


class ErrorResponse(_Incoming):
    requestId: str = ""
    errorCode: str = ""
    errorMessage: str = ""


# --- STK push (Lipa Na M-Pesa Online) --------------------------------------------------------------------


class StkPushRequest(_Outgoing):
    BusinessShortCode: str
    Password: str
    Timestamp: str
    TransactionType: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"]
    Amount: int
    PartyA: str
    PartyB: str
    PhoneNumber: str
    CallBackURL: str
    AccountReference: str = Field(max_length=12)
    TransactionDesc: str = Field(max_length=13)


class StkPushResponse(_Incoming):
    MerchantRequestID: str
    CheckoutRequestID: str
    ResponseCode: Code
    ResponseDescription: str = ""
    CustomerMessage: str = ""


class StkQueryRequest(_Outgoing):
    BusinessShortCode: str
    Password: str
    Timestamp: str
    CheckoutRequestID: str


class StkQueryResponse(_Incoming):
    ResponseCode: Code
    ResponseDescription: str = ""
    MerchantRequestID: str = ""
    CheckoutRequestID: str = ""
    ResultCode: Code
    ResultDesc: str = ""


class CallbackItem(_Incoming):
    Name: str
    Value: Any = None  # Daraja omits Value for some items (e.g. Balance)


class CallbackMetadataBody(_Incoming):
    Item: Annotated[list[CallbackItem], BeforeValidator(_listify)] = Field(default_factory=list)


class StkCallbackData(_Incoming):
    MerchantRequestID: str = ""
    CheckoutRequestID: str
    ResultCode: Code
    ResultDesc: str = ""
    CallbackMetadata: CallbackMetadataBody | None = None

    def item(self, name: str) -> Any:
        if self.CallbackMetadata is None:
            return None
        for it in self.CallbackMetadata.Item:
            if it.Name == name:
                return it.Value
        return None


class StkCallbackBody(_Incoming):
    stkCallback: StkCallbackData


class StkCallbackEnvelope(_Incoming):
    Body: StkCallbackBody


# --- B2C, B2Pochi, B2B, transaction status ---------------------------------------------------------------


class B2CRequest(_Outgoing):
    """`POST /mpesa/b2c/v3/paymentrequest` (note Daraja's spelling `Occassion`)."""

    OriginatorConversationID: str
    InitiatorName: str
    SecurityCredential: str
    CommandID: Literal["BusinessPayment", "SalaryPayment", "PromotionPayment"]
    Amount: int
    PartyA: str
    PartyB: str
    Remarks: str = Field(max_length=100)
    QueueTimeOutURL: str
    ResultURL: str
    Occassion: str = ""


class B2PochiRequest(_Outgoing):
    """`POST /mpesa/b2pochi/v1/paymentrequest`."""

    OriginatorConversationID: str
    InitiatorName: str
    SecurityCredential: str
    CommandID: Literal["BusinessPayToPochi"]
    Amount: int
    PartyA: str
    PartyB: str
    Remarks: str = Field(max_length=100)
    QueueTimeOutURL: str
    ResultURL: str
    Occassion: str = ""  # the BusinessToPochi page's spelling, as B2C's


class B2BRequest(_Outgoing):
    """`POST /mpesa/b2b/v1/paymentrequest` (note Daraja's spelling `RecieverIdentifierType`).

    No `OriginatorConversationID`: Daraja assigns B2B ids itself, so the answer's `ConversationID` is what
    results and status queries are matched by (ledger.md, "What Daraja really does").
    """

    Initiator: str
    SecurityCredential: str
    CommandID: Literal["BusinessPayBill", "BusinessBuyGoods"]
    SenderIdentifierType: str = "4"
    RecieverIdentifierType: str = "4"
    Amount: int
    PartyA: str
    PartyB: str
    AccountReference: str = Field(max_length=13)
    Requester: str = ""
    Remarks: str = Field(max_length=100)
    QueueTimeOutURL: str
    ResultURL: str
    Occassion: str = ""


class TransactionStatusRequest(_Outgoing):
    """`POST /mpesa/transactionstatus/v1/query`: by receipt (`TransactionID`) or `OriginalConversationID`."""

    Initiator: str
    SecurityCredential: str
    CommandID: Literal["TransactionStatusQuery"] = "TransactionStatusQuery"
    TransactionID: str = ""
    OriginalConversationID: str = ""
    PartyA: str
    IdentifierType: str = "4"
    ResultURL: str
    QueueTimeOutURL: str
    Remarks: str = Field(max_length=100)
    Occasion: str = ""


class AccountBalanceRequest(_Outgoing):
    """`POST /mpesa/accountbalance/v1/query`: the float of a shortcode, reported to the ResultURL."""

    Initiator: str
    SecurityCredential: str
    CommandID: Literal["AccountBalance"] = "AccountBalance"
    PartyA: str
    IdentifierType: str = "4"
    Remarks: str = Field(max_length=100)
    QueueTimeOutURL: str
    ResultURL: str


class ReversalRequest(_Outgoing):
    """`POST /mpesa/reversal/v1/request`: reverse a payment we made, by its receipt (`TransactionID`)."""

    Initiator: str
    SecurityCredential: str
    CommandID: Literal["TransactionReversal"] = "TransactionReversal"
    TransactionID: str
    Amount: int
    ReceiverParty: str
    RecieverIdentifierType: str = "11"
    ResultURL: str
    QueueTimeOutURL: str
    Remarks: str = Field(max_length=100)
    Occasion: str = ""


class AcceptedResponse(_Incoming):
    """The synchronous answer of B2C/B2Pochi/B2B/status: accepted for processing, result comes later."""

    ConversationID: str = ""
    OriginatorConversationID: str = ""
    ResponseCode: Code
    ResponseDescription: str = ""


class ResultParameterItem(_Incoming):
    Key: str
    Value: Any = None


class ResultParameterList(_Incoming):
    ResultParameter: Annotated[list[ResultParameterItem], BeforeValidator(_listify)] = Field(
        default_factory=list
    )


class ReferenceItemBody(_Incoming):
    Key: str
    Value: Any = None


class ReferenceDataBody(_Incoming):
    ReferenceItem: Annotated[list[ReferenceItemBody], BeforeValidator(_listify)] = Field(default_factory=list)


class ResultBody(_Incoming):
    ResultType: Code = "0"
    ResultCode: Code
    ResultDesc: str = ""
    OriginatorConversationID: str = ""
    ConversationID: str = ""
    TransactionID: str = ""
    ResultParameters: ResultParameterList | None = None
    ReferenceData: ReferenceDataBody | None = None

    def parameter(self, key: str) -> Any:
        if self.ResultParameters is None:
            return None
        for p in self.ResultParameters.ResultParameter:
            if p.Key == key:
                return p.Value
        return None

    @property
    def succeeded(self) -> bool:
        return self.ResultCode == "0"


class ResultEnvelope(_Incoming):
    """Result and queue-timeout callbacks of B2C, B2Pochi, B2B and transaction status."""

    Result: ResultBody


def as_decimal(value: Any) -> Decimal | None:
    """An amount from a callback (number or string), or None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None


def callback_amount(raw: Any) -> Decimal | None:
    """A callback's amount as money (positive, finite, at most two places), or None when it is not one."""
    value = as_decimal(raw)
    if value is None:
        return None
    try:
        amount = to_amount(value)
    except LedgerError:
        return None
    return amount if amount > 0 else None


def account_balances(value: Any) -> dict[str, Decimal]:
    """Account Balance's `AccountBalance` value, `Working Account|KES|700000.00|700000.00|0.00|0.00&...`,
    as {account name: available amount} (the third field); unreadable parts are left out."""
    balances: dict[str, Decimal] = {}
    for part in str(value or "").split("&"):
        fields = part.split("|")
        if len(fields) >= 3:
            amount = as_decimal(fields[2])
            if amount is not None and amount.is_finite():
                balances[fields[0].strip()] = amount
    return balances
