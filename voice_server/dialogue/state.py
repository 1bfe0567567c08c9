"""The dialogue's state: small, JSON-ready (it is stored in `voice_sessions.dialogue_state`), and the facts
about the user the driver looks up for a turn (`World`), and the actions the dialogue asks for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from intents import ContactIndex
from intents.models import RECIPIENT_FIELDS, Recipient
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.wording import Language


def recipient_of(source: object, *, filled: bool = False) -> dict[str, Any]:
    """The recipient fields of a parse, a draft, a proposal or a ledger row, by name (`filled`: only those
    that hold something), so every layer hands them on the same way."""
    fields = {k: getattr(source, k) for k in RECIPIENT_FIELDS}
    return {k: v for k, v in fields.items() if v} if filled else fields


class Draft(Recipient):
    """A request being put together (before read-back), or the request of a proposal being corrected."""

    model_config = ConfigDict(extra="ignore")

    type: str
    amount: Decimal | None = None
    recipient_name: str = ""
    text: str = ""
    confidence: int | None = None


class Candidate(BaseModel):
    id: str
    name: str
    phone: str


class LiveProposal(Recipient):
    """The proposal read back to the person: exactly what a yes confirms (id and version)."""

    proposal_id: uuid.UUID
    version: int
    type: str
    amount: Decimal
    fee: Decimal
    recipient_name: str = ""
    expires_at: float | None = None  # epoch seconds
    needs_pin: bool = False  # the ledger's answer: confirming it needs the PIN
    wallet_name: str = ""  # the business wallet it is paid from (empty: the person's own)
    needs_approval: bool = False  # it will wait for an owner's or admin's approval

    @property
    def total(self) -> Decimal:
        return self.amount + self.fee


class DialogueState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phase: Phase = Phase.IDLE  # stored as its plain name, as before it was an enum
    language: Language = "en"
    session_expires_at: float | None = None  # epoch seconds
    draft: Draft | None = None
    asked: str | None = None  # the slot asked in `filling`
    candidates: list[Candidate] = Field(default_factory=list)
    proposal: LiveProposal | None = None
    unclear: int = 0  # unclear answers to the current question
    confirm_voice: bool = False  # how the confirmation waiting for a PIN was given
    confirm_tool: bool = False  # ... and whether by the agent's tool (which cannot carry a PIN)
    resume: Phase | None = None  # where a balance/history/spending answer returns to (a resting phase)
    revising: bool = False  # the proposal in flight replaces `proposal`
    expired_notice: bool = False  # a proposal expired unanswered; told at the next yes


@dataclass(frozen=True)
class World:
    """Facts about the user for this turn, looked up by the driver (the dialogue does no I/O). Who may
    spend is not among them: the ledger answers it (a proposal's `needs_pin`, its refusals)."""

    contacts: ContactIndex = field(default_factory=lambda: ContactIndex(()))


# --- actions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speak:
    text: str
    language: Language
    key: str


@dataclass(frozen=True)
class Show:
    tool_name: Literal["show_proposal", "request_pin", "show_receipt", "balance_update"]
    parameters: dict[str, object]


@dataclass(frozen=True)
class Propose:
    """Ask the ledger to propose (or, with `revise`, to revise that pending proposal to version + 1)."""

    type: str
    amount: Decimal
    fields: dict[str, str]
    revise: uuid.UUID | None = None
    text: str = ""
    confidence: int | None = None


@dataclass(frozen=True)
class Confirm:
    proposal_id: uuid.UUID
    version: int
    voice_verified: bool


@dataclass(frozen=True)
class Cancel:
    proposal_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class CheckPin:
    digits: str


@dataclass(frozen=True)
class FetchBalance:
    pass


@dataclass(frozen=True)
class FetchHistory:
    limit: int = 5


@dataclass(frozen=True)
class FetchSpending:
    """A spending question: the period and at most one recipient (a phone, a paybill or a till)."""

    period: str = "this_month"
    phone: str = ""
    paybill: str = ""
    till: str = ""
    recipient: str = ""  # as it is said back ("Mary Wambui", "paybill 888880")


@dataclass(frozen=True)
class EndSession:
    reason: str


@dataclass(frozen=True)
class Note:
    """What this step amounts to for the turn's result (the last note of a turn wins, fields merge)."""

    outcome: str
    asked: str | None = None
    rejected: str | None = None
    cancelled: bool = False
    balance: Decimal | None = None
    committed: dict[str, object] | None = None


Action = (
    Speak
    | Show
    | Propose
    | Confirm
    | Cancel
    | CheckPin
    | FetchBalance
    | FetchHistory
    | EndSession
    | Note
    | FetchSpending
)
LEDGER_ACTIONS = (Propose, Confirm, CheckPin, FetchBalance, FetchHistory)


@dataclass(frozen=True)
class Step:
    state: DialogueState
    actions: tuple[Action, ...]
