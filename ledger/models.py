"""The ledger's vocabulary: transaction types and statuses, requests and results, and `LedgerError`.

Amounts are `Decimal` with two places everywhere; a float never gets in (pydantic refuses it in strict fields
and the SQL functions refuse more than two places)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intents.models import RECIPIENT_FIELDS, Recipient

CENT = Decimal("0.01")


class TransactionType(StrEnum):
    SEND_PHONE = "send_phone"
    BUY_GOODS_POCHI = "buy_goods_pochi"
    BUY_GOODS_TILL = "buy_goods_till"
    PAYBILL = "paybill"
    WITHDRAW = "withdraw"
    BANK_TO_MPESA = "bank_to_mpesa"
    MPESA_TO_BANK = "mpesa_to_bank"


class TransactionStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class LedgerError(Exception):
    """A refusal of the ledger. `code` is stable (`insufficient_balance`, `stale_version`, ...) and is what
    callers branch on; `message` is for people. Nothing changed when it is raised."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message or code.replace("_", " ")


def to_amount(value: object) -> Decimal:
    """A money amount from a Decimal, int or decimal string; floats and non-numbers are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise LedgerError("invalid_amount", "amounts are decimal strings or Decimals, never floats")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise LedgerError("invalid_amount", "the amount is not a number") from exc
    if not amount.is_finite():
        raise LedgerError("invalid_amount", "the amount is not a finite number")
    if abs(amount) >= Decimal("1e10"):
        raise LedgerError("amount_above_limit", "the amount is far above any limit")
    cents = amount.quantize(CENT)
    if cents != amount:
        raise LedgerError("invalid_amount", "amounts have at most two decimal places")
    return cents


_TEXT_LIMIT = 64


class _RequestHead(BaseModel):
    type: TransactionType
    amount: Decimal


class ProposalRequest(Recipient, _RequestHead):
    """The intent to read back: a type, an amount and the recipient fields of that type (each at most
    `_TEXT_LIMIT` characters, as every text of a request whose field does not say otherwise)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=_TEXT_LIMIT)

    confidence_score: int | None = Field(default=None, ge=0, le=100)
    voice_command_text: str | None = Field(default=None, max_length=2000)
    session_id: str | None = Field(default=None, max_length=200)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object) -> Decimal:
        try:
            return to_amount(value)
        except LedgerError as exc:
            raise ValueError(exc.message) from exc

    @classmethod
    def build(cls, **data: Any) -> ProposalRequest:
        """Like the constructor, but bad input is a `LedgerError` (code of the first problem)."""
        try:
            return cls(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else ""
            code = "invalid_amount" if field == "amount" else "invalid_input"
            if field == "type":
                code = "invalid_type"
            raise LedgerError(code, f"{field}: {first['msg']}") from None


class Proposal(Recipient):
    """A `transactions` row as the ledger sees it (any status)."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID
    type: TransactionType
    amount: Decimal
    fee: Decimal
    version: int
    status: TransactionStatus
    hold_amount: Decimal
    session_id: str | None = None
    confidence_score: int | None = None
    voice_command_text: str | None = None
    voice_verified: bool = False
    # The ledger's answer to "what will confirming this need?" (told in the read-back), and how it was.
    needs_pin: bool = False
    pin_verified: bool = False
    needs_approval: bool = False  # a business spender's payment that will wait for approval (sql/0028)
    mpesa_transaction_id: str = ""
    error_message: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    confirmed_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def total(self) -> Decimal:
        """What the user pays: amount plus fee (for bank_to_mpesa the wallet receives amount - fee)."""
        return self.amount + self.fee

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Proposal:
        data = {k: row[k] for k in cls.model_fields if k in row}
        for key in (*RECIPIENT_FIELDS, "mpesa_transaction_id"):
            if data.get(key) is None:
                data[key] = ""
        for key in ("voice_verified", "needs_pin", "pin_verified", "needs_approval"):
            data[key] = bool(data.get(key))
        return cls(**data)


Transaction = Proposal


class ConfirmResult(BaseModel):
    """What a confirmation returns; a repeated one returns the same with outcome 'already_confirmed'."""

    model_config = ConfigDict(frozen=True)

    outcome: Literal["confirmed", "already_confirmed"]
    transaction_id: uuid.UUID
    version: int
    status: TransactionStatus
    type: TransactionType
    amount: Decimal
    fee: Decimal
    voice_verified: bool
    wallet_balance: Decimal
    available: Decimal
    confirmed_at: datetime
    pin_verified: bool = False  # confirmed with a correct PIN (which resets the allowance without one)
    auto_topup_id: uuid.UUID | None = None
    # bank_to_mpesa: where the person pays from their bank app, and until when (the wallet is credited when
    # M-Pesa confirms the deposit).
    paybill: str | None = None
    account_reference: str | None = None
    deposit_expires_at: datetime | None = None


class Balance(BaseModel):
    model_config = ConfigDict(frozen=True)

    wallet: Decimal
    held: Decimal
    available: Decimal


SettleOutcome = Literal[
    "completed", "failed", "already_settled", "not_processing", "not_found", "not_a_payout"
]
TopupOutcome = Literal[
    "credited", "failed", "already_settled", "not_found", "amount_mismatch", "needs_query", "paid_twice"
]
C2bOutcome = Literal[
    "credited",
    "already_recorded",
    "unmatched",
    "reference_used",
    "reference_expired",
    "wrong_shortcode",
    "too_large",
]
