"""The dialogue's state: small, JSON-ready (it is stored in `voice_sessions.dialogue_state`), and the facts
about the user the driver looks up for a turn (`World`), and the actions the dialogue asks for."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from intents import ContactIndex
from voice_server.dialogue.wording import Language

# Phases a conversation rests in between turns.
StoredPhase = Literal["idle", "filling", "choosing", "read_back", "pin", "ended"]
# Phases inside one turn, while the driver carries out an action and feeds its answer back.
TransientPhase = Literal["proposing", "confirming", "checking_pin", "fetching"]
Phase = StoredPhase | TransientPhase
STORED_PHASES: tuple[StoredPhase, ...] = ("idle", "filling", "choosing", "read_back", "pin", "ended")
TRANSIENT_PHASES: tuple[TransientPhase, ...] = ("proposing", "confirming", "checking_pin", "fetching")

RECIPIENT_FIELDS = ("phone", "till", "paybill", "account", "agent", "store", "bank_code")


def recipient_of(source: object, *, filled: bool = False) -> dict[str, Any]:
    """The recipient fields of a parse, a draft, a proposal or a ledger row, by name (`filled`: only those
    that hold something), so every layer hands them on the same way."""
    fields = {k: getattr(source, k) for k in RECIPIENT_FIELDS}
    return {k: v for k, v in fields.items() if v} if filled else fields


class Recipient(BaseModel):
    """Who is paid, as the ledger's fields name it (which are set depends on the type)."""

    phone: str = ""
    till: str = ""
    paybill: str = ""
    account: str = ""
    agent: str = ""
    store: str = ""
    bank_code: str = ""


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

    @property
    def total(self) -> Decimal:
        return self.amount + self.fee


class DialogueState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    phase: Phase = "idle"
    language: Language = "en"
    session_expires_at: float | None = None  # epoch seconds
    draft: Draft | None = None
    asked: str | None = None  # the slot asked in `filling`
    candidates: list[Candidate] = Field(default_factory=list)
    proposal: LiveProposal | None = None
    unclear: int = 0  # unclear answers to the current question
    confirm_voice: bool = False  # how the confirmation waiting for a PIN was given
    resume: StoredPhase | None = None  # where a balance/history answer returns to
    revising: bool = False  # the proposal in flight replaces `proposal`
    expired_notice: bool = False  # a proposal expired unanswered; told at the next yes


@dataclass(frozen=True)
class World:
    """Facts about the user for this turn, looked up by the driver (the dialogue does no I/O)."""

    contacts: ContactIndex = field(default_factory=lambda: ContactIndex(()))
    pin_set: bool = True
    pin_locked: bool = False
    pin_threshold: Decimal = Decimal("1000")


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
    Speak | Show | Propose | Confirm | Cancel | CheckPin | FetchBalance | FetchHistory | EndSession | Note
)
LEDGER_ACTIONS = (Propose, Confirm, CheckPin, FetchBalance, FetchHistory)


@dataclass(frozen=True)
class Step:
    state: DialogueState
    actions: tuple[Action, ...]
