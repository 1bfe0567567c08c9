"""What can happen to a conversation: the person's events, and the ledger's answers to the dialogue's actions.

Pure data (frozen dataclasses). The network layers translate their frames into the first group; the driver
carries out the dialogue's actions and feeds the second group back. Nothing here does I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Language = Literal["en", "sw"]


# --- what the person does -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """A final transcript (or typed text). `language` is a hint from the recogniser, when it has one."""

    text: str
    asr_confidence: float | None = None
    language: Language | None = None


@dataclass(frozen=True)
class Tap:
    """A button in the app (Confirm / Cancel on the proposal card): never voice-verified."""

    action: Literal["confirm", "cancel"]
    proposal_id: uuid.UUID
    version: int | None = None


@dataclass(frozen=True)
class PinEntry:
    """Digits typed on the app's keypad (never spoken)."""

    digits: str


@dataclass(frozen=True)
class Tick:
    """Time passes; the driver sends one before every turn, so expiries happen even in silence."""


@dataclass(frozen=True)
class ToolPropose:
    """The agent's `propose_transaction` tool: fields an LLM already extracted (type, amount, recipient?,
    phone?, till?, paybill?, account?, agent?, store?, bank?). Validated and matched like speech."""

    fields: dict[str, object]


@dataclass(frozen=True)
class ToolConfirm:
    """The agent's `confirm_transaction` tool: the agent heard a spoken yes (voice-verified)."""

    proposal_id: uuid.UUID
    version: int


@dataclass(frozen=True)
class ToolCancel:
    proposal_id: uuid.UUID


@dataclass(frozen=True)
class AskBalance:
    """`get_balance` tool or a balance button."""


@dataclass(frozen=True)
class AskHistory:
    limit: int = 5


# --- what the ledger answered (fed back by the driver) ---------------------------------------------------


@dataclass(frozen=True)
class ProposalView:
    """A pending proposal as the ledger holds it (the dialogue only reads back what the ledger recorded)."""

    proposal_id: uuid.UUID
    version: int
    type: str
    amount: Decimal
    fee: Decimal
    phone: str = ""
    till: str = ""
    paybill: str = ""
    account: str = ""
    agent: str = ""
    store: str = ""
    bank_code: str = ""
    expires_at_epoch: float | None = None  # the ledger's expiry, seconds since the epoch
    needs_pin: bool = False  # the ledger's answer: confirming it needs the PIN (told in the read-back)
    wallet_name: str = ""  # the business wallet it is paid from (sql/0028), named in the read-back
    needs_approval: bool = False  # a spender's payment above their approval amount waits for approval

    @property
    def total(self) -> Decimal:
        return self.amount + self.fee


@dataclass(frozen=True)
class ProposalMade:
    proposal: ProposalView


@dataclass(frozen=True)
class ProposalRefused:
    """The ledger refused to propose or revise: nothing was written. `available`/`wallet` are told plainly."""

    code: str
    message: str = ""
    available: Decimal | None = None
    wallet: Decimal | None = None


@dataclass(frozen=True)
class Committed:
    """The ledger posted the proposal. `details` carries extra facts of the result (e.g. a deposit paybill
    and reference for bank_to_mpesa) when the ledger gives them."""

    transaction_id: uuid.UUID
    version: int
    type: str
    amount: Decimal
    fee: Decimal
    status: str
    voice_verified: bool
    wallet_balance: Decimal
    available: Decimal
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfirmRefused:
    """The ledger refused the confirmation (stale_version, expired, monthly_limit, ...)."""

    code: str
    message: str = ""
    available: Decimal | None = None
    wallet: Decimal | None = None


@dataclass(frozen=True)
class BalanceTold:
    wallet: Decimal
    available: Decimal


@dataclass(frozen=True)
class HistoryItem:
    type: str
    amount: Decimal
    status: str
    recipient: str
    when_epoch: float | None = None


@dataclass(frozen=True)
class HistoryTold:
    items: tuple[HistoryItem, ...]


@dataclass(frozen=True)
class PinResult:
    """One PIN attempt, counted in the shared lockout (`ledger.pins.check_user_pin`)."""

    outcome: Literal["ok", "wrong", "locked", "not_set"]
    attempts_left: int


@dataclass(frozen=True)
class PayoutSettled:
    """A payout M-Pesa settled (completed, or failed and refunded), to be told once. The driver feeds it in
    (from the ledger's `payout_receipts`); `spoken` says whether it is said aloud (the plan's
    `voice_receipts`, or a greeting): the card is shown either way. `balance` is the wallet after it."""

    transaction_id: uuid.UUID
    type: str
    status: Literal["completed", "failed", "rejected", "expired"]  # (the last two: a business approval)
    amount: Decimal
    fee: Decimal
    reference: str
    balance: Decimal
    phone: str = ""
    till: str = ""
    paybill: str = ""
    account: str = ""
    agent: str = ""
    store: str = ""
    bank_code: str = ""
    recipient_name: str = ""
    spoken: bool = True
    wallet_name: str = ""  # white label: the business it was paid from, named on the receipt


@dataclass(frozen=True)
class SpendingTold:
    """The answer to a spending question (`spending_summary`): the figures, or `allowed` False when the plan
    does not give them (`plan_features` in sql/0023)."""

    allowed: bool
    period: str = "this_month"
    total: Decimal = Decimal("0")
    fees: Decimal = Decimal("0")
    count: int = 0
    previous_total: Decimal = Decimal("0")
    top: tuple[str, ...] = ()
    recipient: str = ""


UserEvent = (
    Utterance | Tap | PinEntry | Tick | ToolPropose | ToolConfirm | ToolCancel | AskBalance | AskHistory
)
LedgerAnswer = (
    ProposalMade
    | ProposalRefused
    | Committed
    | ConfirmRefused
    | BalanceTold
    | HistoryTold
    | PinResult
    | PayoutSettled
    | SpendingTold
)
Event = UserEvent | LedgerAnswer
