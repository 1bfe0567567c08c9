"""The agent tools' bodies and answer, as pydantic models: the endpoints validate with them, `/openapi.json`
and `ongea-pesa agent-config` are generated from them, so the three cannot drift apart."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ledger.models import TransactionType
from voice_server.dialogue.events import (
    AskBalance,
    AskHistory,
    ToolCancel,
    ToolConfirm,
    ToolPropose,
    UserEvent,
    Utterance,
)

MAX_TEXT = 2000
MAX_FIELD = 200


def _amount(value: Any) -> str:
    """A number or a decimal string, kept as the exact decimal it names (floats via their shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError('amount is a number or a decimal string, e.g. 1500 or "1500.00"')
    text = str(value).strip().replace(",", "")
    if len(text) > 20:
        raise ValueError("amount is too long")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("amount is not a number") from None
    if not amount.is_finite():
        raise ValueError("amount is not a number")
    return str(amount)


Amount = Annotated[str, BeforeValidator(_amount)]

SessionField = Field(
    default=None,
    max_length=MAX_FIELD,
    description="the voice session (the agent fills it from the session_id dynamic variable)",
)


class ToolBody(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    session_id: str | None = SessionField

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """A NUL cannot be stored in PostgreSQL text: refused here (a 400), not by the database (a 500)."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text holds a NUL character")
        return value


class ParseCommand(ToolBody):
    text: str = Field(min_length=1, max_length=MAX_TEXT, description="what the person said, word for word")
    asr_confidence: float | None = Field(
        default=None, ge=0, le=1, description="the speech recogniser's confidence, 0 to 1, if known"
    )


class ProposeTransaction(ToolBody):
    type: TransactionType = Field(description="the kind of payment")
    amount: Amount = Field(description="amount in KES, e.g. 1500 (a number or a decimal string)")
    recipient: str | None = Field(
        default=None, max_length=MAX_FIELD, description="a contact's name or nickname, as the person said it"
    )
    phone: str | None = Field(default=None, max_length=40, description="a phone number, for send_phone")
    till: str | None = Field(default=None, max_length=20, description="Buy Goods till number")
    paybill: str | None = Field(default=None, max_length=20, description="Pay Bill business number")
    account: str | None = Field(default=None, max_length=MAX_FIELD, description="Pay Bill account number")
    agent: str | None = Field(default=None, max_length=20, description="M-Pesa agent number, to withdraw")
    store: str | None = Field(default=None, max_length=20, description="the agent's store number")
    bank: str | None = Field(
        default=None, max_length=MAX_FIELD, description="a bank's name, for bank payments"
    )


class ConfirmTransaction(ToolBody):
    proposal_id: uuid.UUID = Field(description="the proposal_id of the proposal that was read back")
    version: int = Field(ge=1, le=2**31 - 1, description="the version that was read back")


class CancelTransaction(ToolBody):
    proposal_id: uuid.UUID = Field(description="the proposal to drop")


class GetBalance(ToolBody):
    pass


class RecentTransactions(ToolBody):
    limit: int = Field(default=5, ge=1, le=20, description="how many, newest first")


class ToolAnswer(BaseModel):
    """Every tool's answer: `say` is what the agent speaks; the rest says what happened."""

    model_config = ConfigDict(extra="allow")

    say: str = Field(description="the sentence the agent should speak, word for word")
    outcome: str = Field(
        description="proposed | asked | committed | cancelled | rejected | answered | ended | ignored"
    )
    language: Literal["en", "sw"]
    proposal_id: str | None = Field(default=None, description="the pending proposal, when there is one")
    version: int | None = None
    type: str | None = None
    amount: str | None = Field(default=None, description='decimal string, e.g. "1500.00"')
    fee: str | None = None
    total: str | None = None
    status: str | None = None
    asked: str | None = Field(default=None, description="the missing detail the agent must ask for")
    rejected: str | None = Field(
        default=None, description="why it was refused, e.g. insufficient_balance, pin_locked, pin_required"
    )
    needs_pin: bool | None = Field(
        default=None, description="the ledger's answer: confirming this proposal needs the PIN (in the app)"
    )
    balance: str | None = None
    committed: dict[str, Any] | None = Field(default=None, description="the transaction committed now")


@dataclass(frozen=True)
class ToolSpec:
    model: type[ToolBody]
    description: str
    event: Callable[[Any], UserEvent]


def _propose_fields(body: ProposeTransaction) -> dict[str, object]:
    fields: dict[str, object] = {"type": body.type.value, "amount": Decimal(body.amount)}
    for name in ("recipient", "phone", "till", "paybill", "account", "agent", "store", "bank"):
        value = getattr(body, name)
        if value:
            fields[name] = value
    return fields


TOOLS: dict[str, ToolSpec] = {
    "parse_command": ToolSpec(
        ParseCommand,
        "Pass what the person said, word for word. Returns what to say back: a read-back to confirm, a "
        "question, a refusal or an answer. Use it for every request about money.",
        lambda b: Utterance(text=b.text, asr_confidence=b.asr_confidence),
    ),
    "propose_transaction": ToolSpec(
        ProposeTransaction,
        "Propose a payment whose details you already have. Nothing moves until it is confirmed; say the "
        "read-back in `say` and wait for a clear yes.",
        lambda b: ToolPropose(fields=_propose_fields(b)),
    ),
    "confirm_transaction": ToolSpec(
        ConfirmTransaction,
        "Call ONLY after the person clearly said yes to the exact read-back of this proposal and version. "
        "When the payment needs the PIN the answer has rejected: pin_required: say its `say` (the person "
        "finishes it in the app with the keypad); a tool never carries a PIN.",
        lambda b: ToolConfirm(proposal_id=b.proposal_id, version=b.version),
    ),
    "cancel_transaction": ToolSpec(
        CancelTransaction,
        "Drop a proposal the person refused.",
        lambda b: ToolCancel(proposal_id=b.proposal_id),
    ),
    "get_balance": ToolSpec(GetBalance, "The person's wallet balance.", lambda b: AskBalance()),
    "recent_transactions": ToolSpec(
        RecentTransactions, "The person's latest transactions.", lambda b: AskHistory(limit=b.limit)
    ),
}
