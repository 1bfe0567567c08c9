"""What the simulator remembers and how it is told to behave, request by request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

CallbackMode = Literal["once", "twice", "none", "out_of_order", "queue_timeout"]


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
    # With http_error (default 500): Daraja's errorCode and message, e.g. "500.003.02" (throttled) or
    # "500.001.1001" with "Unable to lock subscriber, a transaction is already in process ...".
    error_code: str | None = None
    error_message: str | None = None
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
        if self.amount is not None and _number(body.get("Amount")) != str(self.amount):
            return False
        parties = (_number(body.get("PartyB")), _number(body.get("PhoneNumber")))
        if self.party is not None and self.party not in parties:
            return False
        return self.originator is None or str(body.get("OriginatorConversationID")) == self.originator


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


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
    """A payout Daraja accepted (paid or not); `originator_conversation_id` is the id its answer gave."""

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
    account_reference: str = ""
    reversed: bool = False


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
    till: bool = False  # paid to a till (CustomerBuyGoodsOnline): Pull lists it without a bill reference


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
