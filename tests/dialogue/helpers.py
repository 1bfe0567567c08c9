"""Building dialogue states and feeding the ledger's answers, for tests of the pure machine (no database)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from intents import ContactIndex
from voice_server.dialogue.events import (
    BalanceTold,
    Committed,
    ConfirmRefused,
    Event,
    HistoryTold,
    PinResult,
    ProposalMade,
    ProposalRefused,
    ProposalView,
)
from voice_server.dialogue.machine import step
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import (
    Action,
    Candidate,
    CheckPin,
    Confirm,
    DialogueState,
    Draft,
    FetchBalance,
    FetchHistory,
    LiveProposal,
    Propose,
    World,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTACTS = ContactIndex(
    [
        {"id": "c1", "name": "John Doe", "phone_number": "254712345678"},
        {"id": "c2", "name": "John Kamau", "phone_number": "254722111222"},
        {"id": "c3", "name": "Mary Wambui", "phone_number": "254733444555", "nickname": "Mama"},
    ]
)
WORLD = World(contacts=CONTACTS)
PID = uuid.UUID("11111111-1111-1111-1111-111111111111")


def live(amount: str = "500", version: int = 1, *, expires_in: float = 120) -> LiveProposal:
    a = Decimal(amount)
    return LiveProposal(
        proposal_id=PID,
        version=version,
        type="send_phone",
        amount=a,
        fee=(a * Decimal("0.02")).quantize(Decimal("0.01")),
        phone="254733444555",
        recipient_name="Mary Wambui",
        expires_at=(NOW + timedelta(seconds=expires_in)).timestamp(),
        needs_pin=a > 1000,
    )


def state_in(phase: str, *, amount: str = "500") -> DialogueState:
    """A state resting (or caught mid-turn) in `phase`, as the machine itself would leave it."""
    base = DialogueState(language="en", session_expires_at=(NOW + timedelta(minutes=15)).timestamp())
    if phase == "idle":
        return base
    if phase == "filling":
        return base.model_copy(
            update={
                "phase": Phase.FILLING,
                "draft": Draft(type="send_phone", phone="254733444555"),
                "asked": "amount",
            }
        )
    if phase == "choosing":
        return base.model_copy(
            update={
                "phase": Phase.CHOOSING,
                "draft": Draft(type="send_phone", amount=Decimal("200")),
                "asked": "choice",
                "candidates": [
                    Candidate(id="c1", name="John Doe", phone="254712345678"),
                    Candidate(id="c2", name="John Kamau", phone="254722111222"),
                ],
            }
        )
    if phase == "read_back":
        return base.model_copy(update={"phase": Phase.READ_BACK, "proposal": live(amount)})
    if phase == "pin":
        return base.model_copy(update={"phase": Phase.PIN, "proposal": live("1500"), "confirm_voice": True})
    if phase == "ended":
        return base.model_copy(update={"phase": Phase.ENDED})
    if phase == "proposing":
        return base.model_copy(
            update={
                "phase": Phase.PROPOSING,
                "draft": Draft(type="send_phone", amount=Decimal(500), phone="254733444555"),
            }
        )
    if phase == "confirming":
        return base.model_copy(
            update={"phase": Phase.CONFIRMING, "proposal": live(amount), "confirm_voice": True}
        )
    if phase == "checking_pin":
        return base.model_copy(
            update={"phase": Phase.CHECKING_PIN, "proposal": live("1500"), "confirm_voice": True}
        )
    if phase == "fetching":
        return base.model_copy(update={"phase": Phase.FETCHING, "resume": "idle"})
    raise ValueError(phase)


@dataclass
class Bank:
    """The ledger's answers, kept as simply as the machine needs them: a proposal id per request, a version
    counter, and the gate's answers as sql/0019 gives them (`needs_pin` on the proposal, `pin_required` for
    a confirmation without a right PIN just before it). It exists so multi-step conversations can be run
    without a database; the real gate is tested against PostgreSQL (tests/ledger, tests/conversation)."""

    wallet: Decimal = Decimal("5000")
    versions: dict[uuid.UUID, int] = field(default_factory=dict)
    committed: list[tuple[uuid.UUID, int, bool]] = field(default_factory=list)
    pin: str = "4321"
    threshold: Decimal = Decimal("1000")
    no_pin_count: int = 0
    no_pin_amount: Decimal = Decimal("0")
    pin_ok: bool = False  # a right PIN was checked in this turn (the evidence the ledger takes)
    pin_set: bool = True

    def needs_pin(self, type_: str, amount: Decimal) -> bool:
        return type_ != "bank_to_mpesa" and (
            amount > self.threshold or self.no_pin_count >= 5 or self.no_pin_amount + amount > 3000
        )

    def answer(self, action: Action, state: DialogueState) -> Event | None:
        if isinstance(action, Propose):
            if not self.pin_set and self.needs_pin(action.type, action.amount):
                return ProposalRefused("pin_not_set")
            pid = action.revise or uuid.uuid4()
            self.versions[pid] = self.versions.get(pid, 0) + 1
            fee = (action.amount * Decimal("0.02")).quantize(Decimal("0.01"))
            view = ProposalView(
                pid,
                self.versions[pid],
                action.type,
                action.amount,
                fee,
                **action.fields,
                expires_at_epoch=(NOW + timedelta(seconds=120)).timestamp(),
                needs_pin=self.needs_pin(action.type, action.amount),
            )
            return ProposalMade(view)
        if isinstance(action, Confirm):
            p = state.proposal
            assert p is not None
            pin_ok, self.pin_ok = self.pin_ok, False
            if not pin_ok and self.needs_pin(p.type, p.amount):
                return ConfirmRefused("pin_required")
            if p.type != "bank_to_mpesa":
                self.no_pin_count = 0 if pin_ok else self.no_pin_count + 1
                self.no_pin_amount = Decimal(0) if pin_ok else self.no_pin_amount + p.amount
            self.committed.append((action.proposal_id, action.version, action.voice_verified))
            return Committed(
                action.proposal_id,
                action.version,
                p.type,
                p.amount,
                p.fee,
                "processing",
                action.voice_verified,
                self.wallet - p.total,
                self.wallet - p.total,
            )
        if isinstance(action, CheckPin):
            self.pin_ok = action.digits == self.pin
            return PinResult("ok" if self.pin_ok else "wrong", 3)
        if isinstance(action, FetchBalance):
            return BalanceTold(self.wallet, self.wallet)
        if isinstance(action, FetchHistory):
            return HistoryTold(())
        return None


def run(
    state: DialogueState, event: Event, bank: Bank | None = None, *, now: datetime = NOW, world: World = WORLD
) -> tuple[DialogueState, list[Action]]:
    """One turn: the event, then the ledger's answers fed back until the machine rests."""
    bank = bank or Bank()
    result = step(state, event, now, world)
    state, actions = result.state, list(result.actions)
    queue = list(result.actions)
    while queue:
        action = queue.pop(0)
        answer = bank.answer(action, state)
        if answer is not None:
            nxt = step(state, answer, now, world)
            state = nxt.state
            actions += nxt.actions
            queue += nxt.actions
    return state, actions
