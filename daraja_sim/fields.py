"""Each API's request fields as Safaricom's portal pages list them (developer.safaricom.co.ke/apis/...).

Written from the pages, not from any client: names (with the API's own spellings `Occassion` and
`RecieverIdentifierType`), which are required, the type (a Numeric field may come as a JSON number or a
string of digits, as the portal's own samples send both), and the lengths the pages give. A field that is
missing, null, blank, of the wrong type or too long is answered `400.002.02 Bad Request - Invalid <Field>`.
Fields a page does not list, and optional fields sent as null, are ignored as Daraja ignores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from daraja_sim import paths

Kind = Literal["numeric", "string", "url", "timestamp"]
_NUMERIC = re.compile(r"[0-9]+(\.[0-9]+)?")
_TIMESTAMP = re.compile(r"[0-9]{14}")


@dataclass(frozen=True)
class Field:
    kind: Kind = "string"
    required: bool = True
    max_length: int | None = None
    choices: tuple[str, ...] = ()


REQUIRED_STRING = Field()
NUMERIC = Field("numeric")
URL = Field("url")
REMARKS = Field(max_length=100)
OCCASION = Field(required=False, max_length=100)

STK_PUSH: dict[str, Field] = {
    "BusinessShortCode": NUMERIC,
    "Password": REQUIRED_STRING,
    "Timestamp": Field("timestamp"),
    "TransactionType": Field(choices=("CustomerPayBillOnline", "CustomerBuyGoodsOnline")),
    "Amount": NUMERIC,
    "PartyA": NUMERIC,
    "PartyB": NUMERIC,
    "PhoneNumber": NUMERIC,
    "CallBackURL": URL,
    "AccountReference": Field(max_length=12),
    "TransactionDesc": Field(required=False, max_length=13),  # "All fields apart from TransactionDesc"
}
STK_QUERY: dict[str, Field] = {
    "BusinessShortCode": NUMERIC,
    "Password": REQUIRED_STRING,
    "Timestamp": Field("timestamp"),
    "CheckoutRequestID": REQUIRED_STRING,
}
_B2C_COMMON: dict[str, Field] = {
    "OriginatorConversationID": REQUIRED_STRING,
    "InitiatorName": REQUIRED_STRING,
    "SecurityCredential": REQUIRED_STRING,
    "Amount": NUMERIC,
    "PartyA": NUMERIC,
    "PartyB": NUMERIC,
    "Remarks": REMARKS,
    "QueueTimeOutURL": URL,
    "ResultURL": URL,
    "Occassion": OCCASION,
}
B2C: dict[str, Field] = {
    **_B2C_COMMON,
    "CommandID": Field(choices=("BusinessPayment", "SalaryPayment", "PromotionPayment")),
}
# v1 had no OriginatorConversationID (Daraja assigned it).
B2C_V1: dict[str, Field] = {
    **{k: v for k, v in B2C.items() if k != "OriginatorConversationID"},
}
B2POCHI: dict[str, Field] = {**_B2C_COMMON, "CommandID": Field(choices=("BusinessPayToPochi",))}
B2B: dict[str, Field] = {
    "Initiator": REQUIRED_STRING,
    "SecurityCredential": REQUIRED_STRING,
    "CommandID": Field(choices=("BusinessPayBill", "BusinessBuyGoods")),
    "SenderIdentifierType": NUMERIC,
    "RecieverIdentifierType": NUMERIC,
    "Amount": NUMERIC,
    "PartyA": NUMERIC,
    "PartyB": NUMERIC,
    "AccountReference": Field(max_length=13),
    "Requester": Field("numeric", required=False),
    "Remarks": REMARKS,
    "QueueTimeOutURL": URL,
    "ResultURL": URL,
    "Occassion": OCCASION,
}
STATUS: dict[str, Field] = {
    "Initiator": REQUIRED_STRING,
    "SecurityCredential": REQUIRED_STRING,
    # The page's own sample spells it "Command ID"; it takes one value only, so Daraja does not need it.
    "CommandID": Field(required=False, choices=("TransactionStatusQuery",)),
    "TransactionID": Field(required=False),  # TransactionID or OriginalConversationID (checked below)
    "OriginalConversationID": Field(required=False),
    "PartyA": NUMERIC,
    "IdentifierType": NUMERIC,
    "ResultURL": URL,
    "QueueTimeOutURL": URL,
    "Remarks": REMARKS,
    "Occasion": OCCASION,
}
BALANCE: dict[str, Field] = {
    "Initiator": REQUIRED_STRING,
    "SecurityCredential": REQUIRED_STRING,
    "CommandID": Field(choices=("AccountBalance",)),
    "PartyA": NUMERIC,
    "IdentifierType": NUMERIC,
    "Remarks": REMARKS,
    "QueueTimeOutURL": URL,
    "ResultURL": URL,
}
REVERSAL: dict[str, Field] = {
    "Initiator": REQUIRED_STRING,
    "SecurityCredential": REQUIRED_STRING,
    "CommandID": Field(choices=("TransactionReversal",)),
    "TransactionID": REQUIRED_STRING,
    "Amount": NUMERIC,
    "ReceiverParty": NUMERIC,
    "RecieverIdentifierType": NUMERIC,
    "ResultURL": URL,
    "QueueTimeOutURL": URL,
    "Remarks": REMARKS,
    "Occasion": OCCASION,
}
C2B_REGISTER: dict[str, Field] = {
    "ShortCode": NUMERIC,
    "ResponseType": Field(choices=("Completed", "Cancelled")),
    "ConfirmationURL": URL,
    "ValidationURL": URL,
}
C2B_SIMULATE: dict[str, Field] = {
    "ShortCode": NUMERIC,
    "CommandID": Field(choices=("CustomerPayBillOnline", "CustomerBuyGoodsOnline")),
    "Amount": NUMERIC,
    "Msisdn": NUMERIC,
    "BillRefNumber": Field(required=False, max_length=20),  # "null for customer buy goods"
}
PULL_REGISTER: dict[str, Field] = {
    "ShortCode": NUMERIC,
    "RequestType": Field(choices=("Pull",)),
    "NominatedNumber": NUMERIC,
    "CallBackURL": URL,
}
PULL_QUERY: dict[str, Field] = {
    "ShortCode": NUMERIC,
    "StartDate": REQUIRED_STRING,
    "EndDate": REQUIRED_STRING,
    "OffSetValue": Field("numeric", required=False),
}

BY_PATH: dict[str, dict[str, Field]] = {
    paths.STK_PUSH: STK_PUSH,
    paths.STK_QUERY: STK_QUERY,
    paths.B2C: B2C,
    paths.B2C_V1: B2C_V1,
    paths.B2POCHI: B2POCHI,
    paths.B2B: B2B,
    paths.STATUS: STATUS,
    paths.BALANCE: BALANCE,
    paths.REVERSAL: REVERSAL,
    paths.C2B_REGISTER_V1: C2B_REGISTER,
    paths.C2B_REGISTER_V2: C2B_REGISTER,
    paths.C2B_SIMULATE: C2B_SIMULATE,
    paths.PULL_REGISTER: PULL_REGISTER,
    paths.PULL_QUERY: PULL_QUERY,
}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _fits(spec: Field, value: Any) -> bool:
    if isinstance(value, bool) or isinstance(value, dict | list):
        return False
    text = str(value).strip() if not isinstance(value, float) else repr(value)
    if spec.kind == "numeric":
        if isinstance(value, int | float):
            return value >= 0
        return _NUMERIC.fullmatch(text) is not None
    if spec.kind == "timestamp":
        return _TIMESTAMP.fullmatch(text) is not None
    if spec.kind == "url":
        return isinstance(value, str) and text.lower().startswith(("http://", "https://"))
    if spec.choices and text not in spec.choices:
        return False
    return spec.max_length is None or len(text) <= spec.max_length


def first_invalid(path: str, body: dict[str, Any]) -> str | None:
    """The first field of `body` the portal's rules for `path` refuse, or None."""
    spec = BY_PATH.get(path, {})
    for name, field in spec.items():
        value = body.get(name)
        if _blank(value):
            if field.required:
                return name
            continue
        if not _fits(field, value):
            return name
    if (
        path == paths.STATUS
        and _blank(body.get("TransactionID"))
        and _blank(body.get("OriginalConversationID"))
    ):
        return "TransactionID"
    return None


def text(body: dict[str, Any], name: str) -> str:
    """A field as text (numbers as Daraja reads them: 174379 and "174379" alike; 10.0 as "10")."""
    value = body.get(name)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def amount(body: dict[str, Any]) -> int:
    """The Amount of a checked request, in whole shillings (Daraja drops fractions)."""
    return int(float(text(body, "Amount")))
