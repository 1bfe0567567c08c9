"""Typed results: the JSON the spec's output table describes, plus one intent model per transaction type."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_serializer

from intents.limits import MAX_TRANSACTION_KES

TxnType = Literal[
    "send_phone", "buy_goods_pochi", "buy_goods_till", "paybill", "withdraw", "bank_to_mpesa", "mpesa_to_bank"
]
IntentType = TxnType | Literal["check_balance", "transaction_history", "spending_summary"]
TXN_TYPES: frozenset[str] = frozenset(TxnType.__args__)  # type: ignore[attr-defined]
Slot = Literal["amount", "recipient", "till", "paybill", "account", "agent", "store", "bank"]
# The periods a spending question may ask about (weeks start on Monday, dates in Africa/Nairobi).
Period = Literal["today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year"]
PERIODS: tuple[str, ...] = Period.__args__  # type: ignore[attr-defined]
ErrorCode = Literal["amount_not_positive", "amount_above_limit", "invalid_phone", "invalid_number"]

# The fields of a usable intent: limits are M-Pesa's, formats are the spec's.
Amount = Annotated[Decimal, Field(gt=0, le=MAX_TRANSACTION_KES, decimal_places=2)]
KenyanMobile = Annotated[str, StringConstraints(pattern=r"^254[17]\d{8}$")]
BusinessNumber = Annotated[str, StringConstraints(pattern=r"^\d{5,7}$")]
StoreNumber = Annotated[str, StringConstraints(pattern=r"^\d{1,7}$")]
AccountNumber = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,20}$")]
BankCode = Annotated[str, StringConstraints(pattern=r"^\d{2}$")]


class Contact(BaseModel):
    """One entry of the user's address book, as the contacts file and the ledger hold it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    phone_number: str
    nickname: str | None = None


class _Intent(BaseModel):
    model_config = ConfigDict(frozen=True)


class SendPhone(_Intent):
    type: Literal["send_phone"] = "send_phone"
    amount: Amount
    phone: KenyanMobile
    contact_id: str | None = None


class BuyGoodsPochi(_Intent):
    type: Literal["buy_goods_pochi"] = "buy_goods_pochi"
    amount: Amount
    phone: KenyanMobile
    contact_id: str | None = None


class BuyGoodsTill(_Intent):
    type: Literal["buy_goods_till"] = "buy_goods_till"
    amount: Amount
    till: BusinessNumber


class Paybill(_Intent):
    type: Literal["paybill"] = "paybill"
    amount: Amount
    paybill: BusinessNumber
    account: AccountNumber


class Withdraw(_Intent):
    type: Literal["withdraw"] = "withdraw"
    amount: Amount
    agent: BusinessNumber
    store: StoreNumber


class BankToMpesa(_Intent):
    type: Literal["bank_to_mpesa"] = "bank_to_mpesa"
    amount: Amount
    bank_code: BankCode


class MpesaToBank(_Intent):
    type: Literal["mpesa_to_bank"] = "mpesa_to_bank"
    amount: Amount
    bank_code: BankCode
    account: AccountNumber


class CheckBalance(_Intent):
    type: Literal["check_balance"] = "check_balance"


class TransactionHistory(_Intent):
    type: Literal["transaction_history"] = "transaction_history"


class SpendingSummary(_Intent):
    """How much was spent in a period, in all or to one recipient; never carries an amount."""

    type: Literal["spending_summary"] = "spending_summary"
    period: Period = "this_month"
    contact_id: str | None = None
    phone: KenyanMobile | None = None
    till: BusinessNumber | None = None
    paybill: BusinessNumber | None = None


Intent = Annotated[
    SendPhone
    | BuyGoodsPochi
    | BuyGoodsTill
    | Paybill
    | Withdraw
    | BankToMpesa
    | MpesaToBank
    | CheckBalance
    | TransactionHistory
    | SpendingSummary,
    Field(discriminator="type"),
]


# The fields that say who is paid, as the parser, the ledger and the dialogue all name them.
RECIPIENT_FIELDS: tuple[str, ...] = ("phone", "till", "paybill", "account", "agent", "store", "bank_code")


class Recipient(BaseModel):
    """Who is paid: the seven recipient fields ("" when unset; which are set depends on the type). The one
    declaration of them: the parse result, the ledger's request and row, and the dialogue's drafts reuse it.

    A model that lists fields before these declares those in a base of its own placed after this one
    (`class ParseResult(Recipient, _ParseHead)`): pydantic orders fields from the last base to the first, so
    the JSON keys keep their order."""

    phone: str = ""
    till: str = ""
    paybill: str = ""
    account: str = ""
    agent: str = ""
    store: str = ""
    bank_code: str = ""


def recipient_of(row: Mapping[str, Any]) -> dict[str, str]:
    """A ledger row's seven recipient fields, "" where the column is NULL (older rows hold NULL)."""
    return {name: row[name] or "" for name in RECIPIENT_FIELDS}


class _ParseHead(BaseModel):
    text: str
    type: IntentType | None = None
    amount: Decimal | None = None


class ParseResult(Recipient, _ParseHead):
    """What one utterance meant. Field order is the spec's output table; `intent` is set only when usable."""

    model_config = ConfigDict(frozen=True)

    contact_id: str | None = None
    candidates: list[str] = Field(default_factory=list)
    missing: list[Slot] = Field(default_factory=list)
    errors: list[ErrorCode] = Field(default_factory=list)
    confidence: int = Field(default=0, ge=0, le=100)
    # For spending_summary only: the period asked about.
    period: Period | None = None
    # The language the utterance is mostly in, so the dialogue answers in it (Sheng with Swahili grammar: sw).
    language: Literal["en", "sw"] = "en"
    intent: Intent | None = Field(default=None, exclude=True)

    @field_serializer("amount")
    def _two_places(self, amount: Decimal | None) -> str | None:
        return None if amount is None else f"{amount:.2f}"

    @property
    def actionable(self) -> bool:
        return self.type in TXN_TYPES and not self.missing and not self.errors

    @property
    def confident(self) -> bool:
        return self.actionable and self.confidence >= 80

    def to_json(self) -> str:
        """One line of JSON in the spec's key order (what `ongea-pesa parse` prints)."""
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, separators=(", ", ": "))
