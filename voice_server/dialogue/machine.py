"""The dialogue: `step(state, event, now, world) -> Step(new state, actions)`. Pure: no database, no network,
no clock of its own (time comes in as `now`).

The rules are the table `TRANSITIONS` at the end of this module, in the manner of h11's `_state.py`: for each
phase, which kind of event is allowed, which handler runs, and the phases it may lead to. An event kind not
listed for a phase is ignored (the state does not change). Read it against `shared/spec/transcripts.md`:

- nothing is confirmed but the exact proposal (id and version) that was read back, after a yes, a tap or the
  agent's confirm tool; a correction revises it (version + 1) and reads it back again;
- a bare no cancels; the first and second unclear answers are asked again, the third cancels;
- amounts above the PIN threshold need the PIN after the yes; five wrong PINs lock (`pin_locked`); without
  a PIN such a request is refused before it is read back (`pin_not_set`);
- an unanswered proposal expires (the ledger's `expires_at`), a session at `session_expires_at`: expiry is
  checked first at every step, and ends everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation

from intents import parse
from intents.banks import bank_name
from intents.models import TXN_TYPES
from intents.phones import normalise_phone
from voice_server.dialogue import understanding as u
from voice_server.dialogue.events import (
    AskBalance,
    AskHistory,
    BalanceTold,
    Committed,
    ConfirmRefused,
    Event,
    HistoryTold,
    PinEntry,
    PinResult,
    ProposalMade,
    ProposalRefused,
    Tap,
    Tick,
    ToolCancel,
    ToolConfirm,
    ToolPropose,
    Utterance,
)
from voice_server.dialogue.state import (
    STORED_PHASES,
    Action,
    Cancel,
    Candidate,
    CheckPin,
    Confirm,
    DialogueState,
    Draft,
    EndSession,
    FetchBalance,
    FetchHistory,
    LiveProposal,
    Note,
    Phase,
    Propose,
    Show,
    Speak,
    Step,
    StoredPhase,
    World,
    recipient_of,
)
from voice_server.dialogue.wording import Language, line, money, plain_amount, spoken_phone

MAX_REASKS = 2
MAX_TEXT = 2000
# Below this recogniser confidence (0..1) a spoken yes is asked again.
MIN_YES_CONFIDENCE = 0.5
# The slots each type needs, in the order they are asked.
REQUIRED: dict[str, tuple[str, ...]] = {
    "send_phone": ("amount", "recipient"),
    "buy_goods_pochi": ("amount", "recipient"),
    "buy_goods_till": ("amount", "till"),
    "paybill": ("amount", "paybill", "account"),
    "withdraw": ("amount", "agent", "store"),
    "bank_to_mpesa": ("amount", "bank"),
    "mpesa_to_bank": ("amount", "bank", "account"),
}
SLOT_FIELD = {
    "recipient": "phone",
    "till": "till",
    "paybill": "paybill",
    "account": "account",
    "agent": "agent",
    "store": "store",
    "bank": "bank_code",
}
PARSER_ERRORS = {
    "amount_not_positive": "amount_not_positive",
    "amount_above_limit": "amount_above_limit",
    "invalid_phone": "invalid_phone",
    "invalid_number": "invalid_number",
}


@dataclass
class Turn:
    """One step being worked out: a copy of the state and the actions asked for so far."""

    state: DialogueState
    world: World
    now: float
    actions: list[Action] = field(default_factory=list)

    @property
    def lang(self) -> Language:
        return self.state.language

    def say(self, key: str, **params: object) -> None:
        self.actions.append(Speak(line(self.lang, key, **params), self.lang, key))

    def note(self, outcome: str, **kw: object) -> None:
        self.actions.append(Note(outcome, **kw))  # type: ignore[arg-type]

    def money(self, amount: Decimal) -> str:
        return money(self.lang, amount)


Handler = Callable[[Turn, Event], None]


# --- the step -----------------------------------------------------------------------------------------------


def step(state: DialogueState, event: Event, now: datetime, world: World) -> Step:
    """Apply one event. Never raises for anything a person can do; unknown pairs are ignored."""
    if isinstance(event, Utterance) and len(event.text) > MAX_TEXT:
        event = replace(event, text=event.text[:MAX_TEXT])  # no one says more in one breath
    turn = Turn(state.model_copy(deep=True), world, now.timestamp())
    kind = kind_of(event, turn.state)
    if isinstance(event, Utterance) and turn.state.phase != "ended":
        turn.state.language = u.detect_language(event.text, turn.state.language, event.language)
    if turn.state.phase in STORED and _expire(turn, kind):
        return Step(turn.state, tuple(turn.actions))
    phase = turn.state.phase
    rule = TRANSITIONS.get(phase, {}).get(kind)
    if rule is None:
        ignore(turn, event)
        return Step(turn.state, tuple(turn.actions))
    handler, targets = rule
    if kind not in ("tick", "balance_told", "history_told"):
        turn.state.expired_notice = turn.state.expired_notice and kind in (
            "yes",
            "tap_confirm",
            "tool_confirm",
        )
    handler(turn, event)
    if turn.state.phase not in targets:  # a broken rule is a bug, never a silent wrong state
        raise AssertionError(f"{phase} --{kind}--> {turn.state.phase}, table allows {sorted(targets)}")
    return Step(turn.state, tuple(turn.actions))


def greet(state: DialogueState, now: datetime, world: World) -> Step:
    """The first message of a connection. When a proposal is still waiting for its answer (the person's app
    lost its connection and came back), it is read back and its card shown again: the card of the old
    connection can no longer be tapped, and a payment must never be answerable only by voice."""
    turn = Turn(state.model_copy(deep=True), world, now.timestamp())
    p = turn.state.proposal
    waiting = turn.state.phase in ("read_back", "pin") and p is not None
    if p is None or not waiting or (p.expires_at is not None and turn.now >= p.expires_at):
        turn.say("greeting")  # an expired proposal is voided by the next step, as at any other turn
    else:
        turn.say("greeting_pending")
        _read_back(turn, p, changed=False)
        if turn.state.phase == "pin":
            turn.actions.append(Show("request_pin", {"proposal_id": str(p.proposal_id)}))
    turn.note("answered")
    return Step(turn.state, tuple(turn.actions))


def kind_of(event: Event, state: DialogueState) -> str:
    """The table's name for an event; utterances are read in the light of the conversation."""
    simple: Mapping[type, str] = {
        Tick: "tick",
        PinEntry: "pin",
        ToolPropose: "tool_propose",
        ToolConfirm: "tool_confirm",
        ToolCancel: "tool_cancel",
        AskBalance: "balance",
        AskHistory: "history",
        ProposalMade: "proposal_made",
        ProposalRefused: "proposal_refused",
        Committed: "committed",
        ConfirmRefused: "confirm_refused",
        BalanceTold: "balance_told",
        HistoryTold: "history_told",
        PinResult: "pin_result",
    }
    if isinstance(event, Tap):
        return "tap_confirm" if event.action == "confirm" else "tap_cancel"
    if isinstance(event, Utterance):
        kind = speech_kind(event.text)
        if kind == "yes" and _poorly_heard(event.asr_confidence):
            return "other"  # a yes the recogniser is unsure of is asked again, never acted on
        if state.phase == "pin" and u.only_digits(u.tokens(event.text)):
            return "pin_aloud"  # digits said while the PIN is awaited are a PIN said aloud: never used
        return kind
    return simple[type(event)]


def _poorly_heard(asr_confidence: float | None) -> bool:
    if asr_confidence is None or asr_confidence != asr_confidence:
        return False
    value = asr_confidence / 100 if asr_confidence > 1 else asr_confidence
    return value < MIN_YES_CONFIDENCE


def speech_kind(text: str) -> str:
    """yes | no | balance | history | help | goodbye | pin_aloud | command | change | other."""
    toks = u.tokens(text)
    if not toks:
        return "other"
    if u.is_yes(toks):
        return "yes"
    if u.is_no(toks):
        return "no"
    if u.says_digits_aloud(toks):
        return "pin_aloud"
    if u.is_help(toks):
        return "help"
    if u.is_goodbye(toks):
        return "goodbye"
    parsed = parse(text)
    if parsed.type == "check_balance" or u.asks_balance(toks):
        return "balance"
    if parsed.type == "transaction_history" or u.asks_history(toks):
        return "history"
    if parsed.type in TXN_TYPES:
        return "command"
    if u.has_no_marker(toks) or u.core_of_correction(toks) != " ".join(toks):
        return "change"
    return "other"


# --- expiry -------------------------------------------------------------------------------------------------

# Events an expiry notice answers by itself (a new request is still handled after it).
_ANSWERED_BY_EXPIRY = frozenset(
    {
        "tick",
        "yes",
        "no",
        "tap_confirm",
        "tap_cancel",
        "tool_confirm",
        "tool_cancel",
        "pin",
        "other",
        "change",
    }
)


def _expire(turn: Turn, kind: str) -> bool:
    """Session and proposal expiry, first thing at every step. True when the event is used up by it."""
    s = turn.state
    if s.phase == "ended":
        return False
    if s.session_expires_at is not None and turn.now >= s.session_expires_at:
        if s.proposal is not None:
            turn.actions.append(Cancel(s.proposal.proposal_id, "session_expired"))
        _reset(s)
        s.phase = "ended"
        turn.say("session_over")
        turn.actions.append(EndSession("expired"))
        turn.note("ended", rejected="expired", cancelled=True)
        return True
    p = s.proposal
    if p is not None and p.expires_at is not None and turn.now >= p.expires_at:
        turn.actions.append(Cancel(p.proposal_id, "expired"))
        _reset(s)
        s.expired_notice = kind == "tick"  # told again at the next yes
        turn.say("rejected.expired")
        turn.note("rejected", rejected="expired", cancelled=True)
        return kind in _ANSWERED_BY_EXPIRY
    return False


def _reset(s: DialogueState) -> None:
    s.phase = "idle"
    s.draft = None
    s.asked = None
    s.candidates = []
    s.proposal = None
    s.unclear = 0
    s.confirm_voice = False
    s.resume = None
    s.revising = False


# --- handlers: small talk -----------------------------------------------------------------------------------


def ignore(turn: Turn, event: Event) -> None:
    turn.note("ignored")


def stay(turn: Turn, event: Event) -> None:
    """Time passed and nothing was due."""
    turn.note("ignored")


def nothing_to_confirm(turn: Turn, event: Event) -> None:
    if turn.state.expired_notice:
        turn.state.expired_notice = False
        turn.say("rejected.expired")
        turn.note("rejected", rejected="expired")
        return
    turn.say("nothing_to_confirm")
    turn.note("rejected", rejected="nothing_to_confirm")


def nothing_to_cancel(turn: Turn, event: Event) -> None:
    turn.say("nothing_to_cancel")
    turn.note("answered")


def not_understood(turn: Turn, event: Event) -> None:
    turn.say("rejected.not_understood")
    turn.note("rejected", rejected="not_understood")


def help_(turn: Turn, event: Event) -> None:
    turn.say("help")
    _reprompt(turn)
    turn.note("answered")


def goodbye(turn: Turn, event: Event) -> None:
    s = turn.state
    had = s.proposal is not None
    if s.proposal is not None:
        turn.actions.append(Cancel(s.proposal.proposal_id, "session_ended"))
    _reset(s)
    s.phase = "ended"
    turn.say("goodbye_cancelled" if had else "goodbye")
    turn.actions.append(EndSession("ended"))
    turn.note("ended", cancelled=had)


def fetch_balance(turn: Turn, event: Event) -> None:
    turn.state.resume = _stored(turn.state.phase)
    turn.state.phase = "fetching"
    turn.actions.append(FetchBalance())


def fetch_history(turn: Turn, event: Event) -> None:
    limit = event.limit if isinstance(event, AskHistory) else 5
    turn.state.resume = _stored(turn.state.phase)
    turn.state.phase = "fetching"
    turn.actions.append(FetchHistory(max(1, min(limit, 10))))


def told_balance(turn: Turn, event: Event) -> None:
    assert isinstance(event, BalanceTold)
    s = turn.state
    s.phase = s.resume or "idle"
    s.resume = None
    turn.say("balance.wallet", wallet=turn.money(event.wallet))
    if event.available != event.wallet:
        turn.say("balance.held", available=turn.money(event.available))
    turn.actions.append(Show("balance_update", {"balance": plain_amount(event.wallet)}))
    _reprompt(turn)
    turn.note("answered", balance=event.wallet)


def told_history(turn: Turn, event: Event) -> None:
    assert isinstance(event, HistoryTold)
    s = turn.state
    s.phase = s.resume or "idle"
    s.resume = None
    if not event.items:
        turn.say("history.none")
    else:
        turn.say("history.intro")
        for item in event.items:
            what = line(turn.lang, f"what.{item.type}", **_names(item.recipient))
            status = line(turn.lang, f"status.{item.status}")
            turn.say("history.item", amount=turn.money(item.amount), what=what, status=status)
    _reprompt(turn)
    turn.note("answered")


def _names(recipient: str) -> dict[str, str]:
    return {"recipient": recipient, "till": recipient, "paybill": recipient}


def _reprompt(turn: Turn) -> None:
    """After an answer in the middle of a request, ask its question again."""
    s = turn.state
    if s.phase == "read_back" and s.proposal is not None:
        turn.say("readback.question")
    elif s.phase == "pin":
        turn.say("ask.pin")
    elif s.phase == "filling" and s.asked:
        turn.say(f"ask.{s.asked}")
    elif s.phase == "choosing":
        _ask_choice(turn)


def _stored(phase: Phase) -> StoredPhase:
    if phase in STORED_PHASES:
        return phase
    raise AssertionError(f"not a resting phase: {phase}")


# --- handlers: putting a request together -------------------------------------------------------------------


def new_request(turn: Turn, event: Event) -> None:
    """A spoken command (or the propose tool) with no proposal live: read back, ask, or refuse."""
    s = turn.state
    if isinstance(event, ToolPropose):
        draft, candidates, errors = _draft_from_tool(event.fields, turn.world)
    else:
        assert isinstance(event, Utterance)
        draft, candidates, errors = _draft_from_speech(event.text, turn.world, event.asr_confidence)
    if draft is None:
        not_understood(turn, event)
        return
    live = s.proposal  # a proposal still pending (a correction being completed) is revised, never left behind
    _reset(s)
    s.proposal = live
    _advance(turn, draft, candidates, errors)


def merge_request(turn: Turn, event: Event) -> None:
    """A command while a request is being filled: same type adds to it, another type starts over."""
    s = turn.state
    assert isinstance(event, Utterance)
    draft, candidates, errors = _draft_from_speech(event.text, turn.world, event.asr_confidence)
    if draft is None or s.draft is None or draft.type != s.draft.type:
        new_request(turn, event)
        return
    merged = s.draft.model_copy(
        update={k: v for k, v in draft.model_dump().items() if v not in ("", None) and k != "type"}
    )
    _advance(turn, merged, candidates, errors)


def answer_slot(turn: Turn, event: Event) -> None:
    """The answer to the slot asked ("How much?" -> "mia tano")."""
    s = turn.state
    assert isinstance(event, Utterance) and s.draft is not None and s.asked is not None
    heard = u.read_slot(s.asked, event.text, turn.world.contacts)
    if heard.errors:
        _refuse_input(turn, heard.errors[0])
        return
    if heard.empty:
        unclear(turn, event)
        return
    draft = s.draft.model_copy(update=_changes(heard, turn.world))
    _advance(turn, draft, _candidates(heard.candidates, turn.world), ())


def pick_candidate(turn: Turn, event: Event) -> None:
    s = turn.state
    assert isinstance(event, Utterance) and s.draft is not None
    index = u.choose(event.text, [c.name for c in s.candidates])
    if index is None:
        heard = u.read_slot("recipient", event.text, turn.world.contacts)
        ids = {c.id for c in s.candidates}
        if heard.contact_id in ids:
            index = [c.id for c in s.candidates].index(heard.contact_id or "")
    if index is None:
        unclear(turn, event)
        return
    chosen = s.candidates[index]
    draft = s.draft.model_copy(update={"phone": chosen.phone, "recipient_name": chosen.name})
    _advance(turn, draft, [], ())


def _advance(turn: Turn, draft: Draft, candidates: list[Candidate], errors: tuple[str, ...]) -> None:
    """The next move for a request: refuse what is wrong, choose, ask what is missing, or propose."""
    s = turn.state
    s.draft = draft
    if errors:
        _refuse_input(turn, errors[0])
        return
    if len(candidates) >= 2:
        s.phase, s.candidates, s.asked, s.unclear = "choosing", candidates, "choice", 0
        _ask_choice(turn)
        turn.note("asked", asked="choice")
        return
    missing = _missing(draft)
    if missing:
        if s.asked != missing or s.phase != "filling":
            s.unclear = 0
        s.phase, s.asked, s.candidates = "filling", missing, []
        turn.say(f"ask.{missing}")
        turn.note("asked", asked=missing)
        return
    assert draft.amount is not None
    if _needs_pin(draft.type, draft.amount, turn.world):
        if not turn.world.pin_set:
            _refuse_before_readback(turn, "pin_not_set")
            return
        if turn.world.pin_locked:
            _refuse_before_readback(turn, "pin_locked")
            return
    fields = recipient_of(draft, filled=True)
    revise = s.proposal.proposal_id if s.proposal is not None else None
    s.revising = revise is not None
    s.phase, s.asked, s.candidates = "proposing", None, []
    turn.actions.append(Propose(draft.type, draft.amount, fields, revise, draft.text, draft.confidence))


def _refuse_input(turn: Turn, code: str) -> None:
    """What was heard cannot be used (a bad number, an amount out of range)."""
    s = turn.state
    if s.proposal is not None:
        # A correction that cannot be used leaves the proposal as it was read back.
        turn.say(f"rejected.{code}")
        s.phase = "read_back"
        s.draft, s.candidates, s.asked = None, [], None
        _read_back(turn, s.proposal, changed=False)
        turn.note("rejected", rejected=code)
        return
    _reset(s)
    turn.say(f"rejected.{code}")
    turn.note("rejected", rejected=code)


def _refuse_before_readback(turn: Turn, code: str) -> None:
    s = turn.state
    cancelled = s.proposal is not None
    if s.proposal is not None:
        turn.actions.append(Cancel(s.proposal.proposal_id, code))
    _reset(s)
    turn.say(f"rejected.{code}", threshold=money(turn.lang, turn.world.pin_threshold))
    turn.note("rejected", rejected=code, cancelled=cancelled)


def _ask_choice(turn: Turn) -> None:
    names = [c.name for c in turn.state.candidates]
    options = ", ".join(names[:-1]) + f" {line(turn.lang, 'ask.or')} " + names[-1]
    turn.say("ask.choice", options=options)


def _missing(draft: Draft) -> str | None:
    for slot in REQUIRED.get(draft.type, ("amount",)):
        if slot == "amount":
            if draft.amount is None:
                return slot
        elif not getattr(draft, SLOT_FIELD[slot]):
            return slot
    return None


def _needs_pin(type_: str, amount: Decimal, world: World) -> bool:
    """Strictly above the threshold (exactly 1,000 needs none); bank_to_mpesa moves nothing out."""
    return type_ != "bank_to_mpesa" and amount > world.pin_threshold


# --- handlers: the proposal ---------------------------------------------------------------------------------


def proposal_made(turn: Turn, event: Event) -> None:
    assert isinstance(event, ProposalMade)
    s = turn.state
    v = event.proposal
    name = s.draft.recipient_name if s.draft is not None else ""
    if not name and v.phone:
        name = _contact_name_by_phone(v.phone, turn.world)
    changed = s.revising
    s.proposal = LiveProposal(
        proposal_id=v.proposal_id,
        version=v.version,
        type=v.type,
        amount=v.amount,
        fee=v.fee,
        phone=v.phone,
        till=v.till,
        paybill=v.paybill,
        account=v.account,
        agent=v.agent,
        store=v.store,
        bank_code=v.bank_code,
        recipient_name=name,
        expires_at=v.expires_at_epoch,
    )
    s.phase, s.draft, s.unclear, s.revising, s.confirm_voice = "read_back", None, 0, False, False
    _read_back(turn, s.proposal, changed=changed)
    turn.note("proposed")


def proposal_refused(turn: Turn, event: Event) -> None:
    """The ledger said no before read-back: nothing was written (a refused revision drops the old one)."""
    assert isinstance(event, ProposalRefused)
    s = turn.state
    cancelled = s.revising and s.proposal is not None
    if s.revising and s.proposal is not None:
        turn.actions.append(Cancel(s.proposal.proposal_id, f"revision refused: {event.code}"))
    _reset(s)
    code = event.code
    key = f"rejected.{code}" if _has_rejection(code) else "rejected.generic"
    wallet = event.wallet if event.wallet is not None else Decimal("0")
    available = event.available if event.available is not None else wallet
    turn.say(
        key,
        wallet=turn.money(wallet),
        available=turn.money(available),
        threshold=turn.money(turn.world.pin_threshold),
    )
    turn.note("rejected", rejected=code, cancelled=cancelled, balance=event.wallet)


def _has_rejection(code: str) -> bool:
    from voice_server.dialogue.wording import has_line

    return has_line("en", f"rejected.{code}")


def _read_back(turn: Turn, p: LiveProposal, *, changed: bool) -> None:
    if changed:
        turn.say("readback.changed")
    turn.say(f"readback.{p.type}", **_describe(turn.lang, p))
    if p.type == "bank_to_mpesa":
        turn.say("readback.costs_deposit", fee=turn.money(p.fee), net=turn.money(p.amount - p.fee))
    elif p.fee > 0:
        turn.say("readback.costs", fee=turn.money(p.fee), total=turn.money(p.total))
    else:
        turn.say("readback.costs_free")
    needs_pin = _needs_pin(p.type, p.amount, turn.world)
    turn.say("readback.question_pin" if needs_pin else "readback.question")
    readback = " ".join(a.text for a in turn.actions if isinstance(a, Speak) and a.key.startswith("readback"))
    params: dict[str, object] = {
        "proposal_id": str(p.proposal_id),
        "version": p.version,
        "type": p.type,
        "amount": plain_amount(p.amount),
        **recipient_of(p, filled=True),
        "fee": plain_amount(p.fee),
        "total": plain_amount(p.total),
        "readback": readback,
    }
    if p.recipient_name:
        params["recipient_name"] = p.recipient_name
    turn.actions.append(Show("show_proposal", params))


def _describe(lang: Language, p: LiveProposal | Draft) -> dict[str, str]:
    amount = p.amount if p.amount is not None else Decimal("0")
    phone = spoken_phone(p.phone)
    recipient = (
        line(lang, "recipient.named", name=p.recipient_name, phone=phone)
        if p.recipient_name
        else line(lang, "recipient.phone", phone=phone)
    )
    return {
        "amount": money(lang, amount),
        "recipient": recipient,
        "name": p.recipient_name or phone,
        "till": p.till,
        "paybill": p.paybill,
        "account": p.account,
        "agent": p.agent,
        "store": p.store,
        "bank": bank_name(p.bank_code) or p.bank_code,
    }


def accept_spoken(turn: Turn, event: Event) -> None:
    """A spoken yes to the proposal read back (or the agent's confirm tool, which is a spoken yes)."""
    if isinstance(event, ToolConfirm) and not _same_version(turn, event.proposal_id, event.version):
        return
    _accept(turn, voice=True)


def accept_tap(turn: Turn, event: Event) -> None:
    assert isinstance(event, Tap)
    if not _same_version(turn, event.proposal_id, event.version):
        return
    _accept(turn, voice=False)


def _same_version(turn: Turn, proposal_id: uuid.UUID, version: int | None) -> bool:
    """A confirmation of another proposal, or of an older version of this one, is refused."""
    p = turn.state.proposal
    assert p is not None
    if proposal_id == p.proposal_id and (version is None or version == p.version):
        return True
    turn.say("rejected.stale_version")
    turn.state.phase = "read_back"
    _read_back(turn, p, changed=False)
    turn.note("rejected", rejected="stale_version")
    return False


def _accept(turn: Turn, *, voice: bool) -> None:
    s = turn.state
    p = s.proposal
    assert p is not None
    if _needs_pin(p.type, p.amount, turn.world):
        if not turn.world.pin_set:
            _refuse_before_readback(turn, "pin_not_set")
            return
        if turn.world.pin_locked:
            _refuse_before_readback(turn, "pin_locked")
            return
        s.phase, s.confirm_voice, s.unclear = "pin", voice, 0
        turn.say("ask.pin")
        turn.actions.append(Show("request_pin", {"proposal_id": str(p.proposal_id)}))
        turn.note("asked", asked="pin")
        return
    s.phase, s.confirm_voice = "confirming", voice
    turn.actions.append(Confirm(p.proposal_id, p.version, voice))


def ask_pin_again(turn: Turn, event: Event) -> None:
    """A yes (or a tap) while the PIN is awaited: the PIN is still needed."""
    s = turn.state
    assert s.proposal is not None
    if isinstance(event, Tap | ToolConfirm) and not _same_version(turn, event.proposal_id, event.version):
        return
    turn.say("ask.pin")
    turn.actions.append(Show("request_pin", {"proposal_id": str(s.proposal.proposal_id)}))
    turn.note("asked", asked="pin")


def confirm_first(turn: Turn, event: Event) -> None:
    """A PIN typed before the yes: not an answer to anything (the yes must come first)."""
    turn.say("confirm_first")
    turn.note("asked", asked=None)


def pin_aloud(turn: Turn, event: Event) -> None:
    turn.say("pin.spoken")
    if turn.state.proposal is not None:
        turn.actions.append(Show("request_pin", {"proposal_id": str(turn.state.proposal.proposal_id)}))
    turn.note("asked", asked="pin")


def check_pin(turn: Turn, event: Event) -> None:
    assert isinstance(event, PinEntry)
    turn.state.phase = "checking_pin"
    turn.actions.append(CheckPin(event.digits))


def pin_result(turn: Turn, event: Event) -> None:
    assert isinstance(event, PinResult)
    s = turn.state
    p = s.proposal
    assert p is not None
    if event.outcome == "ok":
        s.phase = "confirming"
        turn.actions.append(Confirm(p.proposal_id, p.version, s.confirm_voice))
        return
    if event.outcome == "wrong" and event.attempts_left > 0:
        s.phase = "pin"
        turn.say("pin.wrong", left=event.attempts_left)
        turn.actions.append(Show("request_pin", {"proposal_id": str(p.proposal_id)}))
        turn.note("asked", asked="pin", rejected="wrong_pin")
        return
    code = "pin_not_set" if event.outcome == "not_set" else "pin_locked"
    _refuse_before_readback(turn, code)


def committed(turn: Turn, event: Event) -> None:
    assert isinstance(event, Committed)
    s = turn.state
    p = s.proposal
    assert p is not None
    words = _describe(turn.lang, p)
    if event.type == "bank_to_mpesa":
        paybill = event.details.get("paybill", "")
        reference = event.details.get("reference", "")
        if paybill and reference:
            turn.say("committed.bank_to_mpesa_paybill", paybill=paybill, reference=reference, **_minus(words))
        else:
            turn.say("committed.bank_to_mpesa", **words)
    else:
        turn.say(f"committed.{event.type}", **words)
        turn.say("committed.balance", balance=turn.money(event.wallet_balance))
    receipt: dict[str, object] = {
        "transaction_id": str(event.transaction_id),
        "status": event.status,
        "balance": plain_amount(event.wallet_balance),
        **{k: v for k, v in event.details.items() if k in ("paybill", "reference")},
    }
    turn.actions.append(Show("show_receipt", receipt))
    result: dict[str, object] = {
        "transaction_id": str(event.transaction_id),
        "version": event.version,
        "type": event.type,
        "amount": plain_amount(event.amount),
        **recipient_of(p, filled=True),
        "fee": plain_amount(event.fee),
        "status": event.status,
        "voice_verified": event.voice_verified,
        "balance": plain_amount(event.wallet_balance),
        **event.details,
    }
    _reset(s)
    turn.note("committed", committed=result, balance=event.wallet_balance)


def _minus(words: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in words.items() if k not in ("paybill",)}


def confirm_refused(turn: Turn, event: Event) -> None:
    assert isinstance(event, ConfirmRefused)
    s = turn.state
    p = s.proposal
    assert p is not None
    code = event.code
    turn.actions.append(Cancel(p.proposal_id, f"confirm refused: {code}"))
    _reset(s)
    wallet = event.wallet if event.wallet is not None else Decimal("0")
    turn.say(
        f"rejected.{code}" if _has_rejection(code) else "rejected.generic",
        wallet=turn.money(wallet),
        available=turn.money(event.available if event.available is not None else wallet),
        threshold=turn.money(turn.world.pin_threshold),
    )
    turn.note("rejected", rejected=code, cancelled=True, balance=event.wallet)


def cancel(turn: Turn, event: Event) -> None:
    """A bare no, a cancel tap or the cancel tool: the proposal (or the request being filled) is dropped."""
    s = turn.state
    if (
        isinstance(event, Tap | ToolCancel)
        and s.proposal is not None
        and event.proposal_id != s.proposal.proposal_id
    ):
        turn.note("ignored")
        return
    if s.proposal is not None:
        turn.actions.append(Cancel(s.proposal.proposal_id, "cancelled"))
    _reset(s)
    turn.say("cancelled")
    turn.note("cancelled", cancelled=True)


def revise(turn: Turn, event: Event) -> None:
    """A correction while a proposal is live: the changed request is proposed as version + 1."""
    s = turn.state
    p = s.proposal
    assert p is not None
    if isinstance(event, ToolPropose):
        draft, candidates, errors = _draft_from_tool(event.fields, turn.world)
        if draft is None:
            unclear(turn, event)
            return
        base = _draft_of(p)
        if draft.type == p.type:
            draft = base.model_copy(
                update={k: v for k, v in draft.model_dump().items() if v not in ("", None)}
            )
        _advance(turn, draft, candidates, errors)
        return
    assert isinstance(event, Utterance)
    heard = u.read_change(event.text, p.type, turn.world.contacts)
    if heard.empty:
        unclear(turn, event)
        return
    if heard.errors:
        _refuse_input(turn, heard.errors[0])
        return
    base = _draft_of(p)
    if heard.type is not None and heard.type != p.type:
        base = Draft(type=heard.type, amount=p.amount)
    draft = base.model_copy(update={**_changes(heard, turn.world), "text": event.text})
    _advance(turn, draft, _candidates(heard.candidates, turn.world), ())


def unclear(turn: Turn, event: Event) -> None:
    """An answer that fits nothing: asked again twice, the third time the request is cancelled."""
    s = turn.state
    s.unclear += 1
    if s.unclear > MAX_REASKS:
        if s.proposal is not None:
            turn.actions.append(Cancel(s.proposal.proposal_id, "not_understood"))
        _reset(s)
        turn.say("gave_up")
        turn.note("cancelled", rejected="not_understood", cancelled=True)
        return
    turn.say("reask.prefix")
    if s.phase == "read_back":
        turn.say("reask.read_back")
    elif s.phase == "pin":
        turn.say("reask.pin")
    else:
        _reprompt(turn)
    turn.note(
        "asked",
        asked=s.asked if s.phase in ("filling", "choosing") else ("pin" if s.phase == "pin" else None),
    )


# --- building drafts ----------------------------------------------------------------------------------------


def _draft_of(p: LiveProposal) -> Draft:
    return Draft(
        type=p.type,
        amount=p.amount,
        **recipient_of(p),
        recipient_name=p.recipient_name,
    )


def _changes(heard: u.Heard, world: World) -> dict[str, object]:
    update: dict[str, object] = {}
    if heard.amount is not None:
        update["amount"] = heard.amount
    for k, v in heard.fields:
        update[k] = v
    if "phone" in update:
        update["recipient_name"] = _contact_name(heard.contact_id, world) or _contact_name_by_phone(
            str(update["phone"]), world
        )
    return update


def _candidates(ids: tuple[str, ...] | list[str], world: World) -> list[Candidate]:
    out: list[Candidate] = []
    if len(ids) < 2:
        return out
    by_id = {c.id: c for c in world.contacts.contacts}
    for cid in ids:
        c = by_id.get(cid)
        if c is not None:
            phone = normalise_phone(c.phone_number) or c.phone_number
            out.append(Candidate(id=c.id, name=c.name, phone=phone))
    return out


def _contact_name(contact_id: str | None, world: World) -> str:
    if contact_id is None:
        return ""
    for c in world.contacts.contacts:
        if c.id == contact_id:
            return c.name
    return ""


def _contact_name_by_phone(phone: str, world: World) -> str:
    index = world.contacts.by_phone.get(phone)
    return world.contacts.contacts[index].name if index is not None else ""


def _draft_from_speech(
    text: str, world: World, asr_confidence: float | None
) -> tuple[Draft | None, list[Candidate], tuple[str, ...]]:
    result = parse(text, world.contacts, asr_confidence=asr_confidence)
    if result.type not in TXN_TYPES or result.type is None:
        return None, [], ()
    draft = Draft(
        type=result.type,
        amount=result.amount,
        **recipient_of(result),
        recipient_name=_contact_name(result.contact_id, world)
        or (_contact_name_by_phone(result.phone, world) if result.phone else ""),
        text=text[:2000],
        confidence=result.confidence,
    )
    errors = tuple(PARSER_ERRORS[e] for e in result.errors if e in PARSER_ERRORS)
    return draft, _candidates(result.candidates, world), errors


def _draft_from_tool(
    fields: Mapping[str, object], world: World
) -> tuple[Draft | None, list[Candidate], tuple[str, ...]]:
    """The propose tool's fields, validated and matched like speech (a name goes through the contacts)."""
    type_ = str(fields.get("type") or "")
    if type_ not in TXN_TYPES:
        return None, [], ()
    errors: list[str] = []
    amount: Decimal | None = None
    raw = fields.get("amount")
    if raw is not None and not isinstance(raw, bool):
        try:
            amount = Decimal(str(raw).replace(",", "").strip())
        except InvalidOperation:
            errors.append("invalid_number")
        else:
            if not amount.is_finite():
                errors.append("invalid_number")
            elif amount <= 0:
                errors.append("amount_not_positive")
            elif amount > 250_000:
                errors.append("amount_above_limit")
            elif amount != amount.quantize(Decimal("0.01")):
                errors.append("invalid_number")
    if errors:
        amount = None  # refused below; a NaN or an out-of-range number never enters the state
    draft = Draft(type=type_, amount=amount, text=str(fields.get("text") or "")[:2000])
    update: dict[str, object] = {}
    candidates: list[Candidate] = []
    phone = str(fields.get("phone") or "").strip()
    recipient = str(fields.get("recipient") or "").strip()
    if phone:
        normal = normalise_phone(phone)
        if normal is None:
            errors.append("invalid_phone")
        else:
            update["phone"] = normal
            update["recipient_name"] = _contact_name_by_phone(normal, world)
    elif recipient and type_ in ("send_phone", "buy_goods_pochi"):
        heard = u.read_slot("recipient", recipient[:200], world.contacts)
        errors += list(heard.errors)
        update.update(_changes(heard, world))
        candidates = _candidates(heard.candidates, world)
    for key, slot in (
        ("till", "till"),
        ("paybill", "paybill"),
        ("account", "account"),
        ("agent", "agent"),
        ("store", "store"),
    ):
        value = str(fields.get(key) or "").strip()
        if value:
            heard = u.read_slot(slot, value[:64], world.contacts)
            got = dict(heard.fields).get(key)
            if got is None:
                errors.append("invalid_number")
            else:
                update[key] = got
    bank = str(fields.get("bank") or fields.get("bank_code") or "").strip()
    if bank:
        if bank.isdigit() and bank_name(bank.zfill(2)):
            update["bank_code"] = bank.zfill(2)
        else:
            got = dict(u.read_slot("bank", bank[:64], world.contacts).fields).get("bank_code")
            if got is None:
                errors.append("invalid_number")
            else:
                update["bank_code"] = got
    return draft.model_copy(update=update), candidates, tuple(dict.fromkeys(errors))


# --- the table ----------------------------------------------------------------------------------------------

STORED = ("idle", "filling", "choosing", "read_back", "pin", "ended")
_ASKING = frozenset({"idle", "filling", "choosing", "proposing"})
# While a correction is completed the earlier proposal is still live: a refusal goes back to its read-back.
_ASKING_LIVE = _ASKING | {"read_back"}
_REVISED = frozenset({"proposing", "read_back", "filling", "choosing", "idle"})

Rule = tuple[Handler, frozenset[str]]


def _rules(**rules: Rule) -> dict[str, Rule]:
    return rules


_SMALL_TALK: dict[str, Rule] = {
    "tick": (stay, frozenset()),  # filled in per phase below
    "balance": (fetch_balance, frozenset({"fetching"})),
    "history": (fetch_history, frozenset({"fetching"})),
    "help": (help_, frozenset()),
    "goodbye": (goodbye, frozenset({"ended"})),
}


def _with_small_talk(phase: str, rules: dict[str, Rule]) -> dict[str, Rule]:
    out = {k: (h, t or frozenset({phase})) for k, (h, t) in _SMALL_TALK.items()}
    out.update(rules)
    return out


# TRANSITIONS[phase][event kind] = (handler, phases it may lead to)
TRANSITIONS: dict[str, dict[str, Rule]] = {
    # Nothing under way: a command starts a request; a yes or a PIN has nothing to answer.
    "idle": _with_small_talk(
        "idle",
        _rules(
            command=(new_request, _ASKING),
            tool_propose=(new_request, _ASKING),
            yes=(nothing_to_confirm, frozenset({"idle"})),
            tap_confirm=(nothing_to_confirm, frozenset({"idle"})),
            tool_confirm=(nothing_to_confirm, frozenset({"idle"})),
            no=(nothing_to_cancel, frozenset({"idle"})),
            change=(not_understood, frozenset({"idle"})),
            other=(not_understood, frozenset({"idle"})),
            pin_aloud=(pin_aloud, frozenset({"idle"})),
        ),
    ),
    # A slot was asked ("How much?"): the answer fills it; a bare no drops the request.
    "filling": _with_small_talk(
        "filling",
        _rules(
            command=(merge_request, _ASKING_LIVE),
            tool_propose=(new_request, _ASKING_LIVE),
            other=(answer_slot, _ASKING_LIVE),
            change=(answer_slot, _ASKING_LIVE),
            yes=(unclear, frozenset({"filling", "idle"})),
            no=(cancel, frozenset({"idle"})),
            tap_cancel=(cancel, frozenset({"idle", "filling"})),
            tool_cancel=(cancel, frozenset({"idle", "filling"})),
        ),
    ),
    # Two contacts fit: the answer picks one by name or position.
    "choosing": _with_small_talk(
        "choosing",
        _rules(
            command=(new_request, _ASKING_LIVE),
            tool_propose=(new_request, _ASKING_LIVE),
            other=(pick_candidate, _ASKING_LIVE),
            change=(pick_candidate, _ASKING_LIVE),
            yes=(unclear, frozenset({"choosing", "idle"})),
            no=(cancel, frozenset({"idle"})),
            tap_cancel=(cancel, frozenset({"idle", "choosing"})),
            tool_cancel=(cancel, frozenset({"idle", "choosing"})),
        ),
    ),
    # A proposal was read back: only a yes/tap/confirm tool of this exact version goes on.
    "read_back": _with_small_talk(
        "read_back",
        _rules(
            yes=(accept_spoken, frozenset({"pin", "confirming", "idle"})),
            tool_confirm=(accept_spoken, frozenset({"pin", "confirming", "idle", "read_back"})),
            tap_confirm=(accept_tap, frozenset({"pin", "confirming", "idle", "read_back"})),
            no=(cancel, frozenset({"idle"})),
            tap_cancel=(cancel, frozenset({"idle", "read_back"})),
            tool_cancel=(cancel, frozenset({"idle", "read_back"})),
            change=(revise, _REVISED),
            command=(revise, _REVISED),
            tool_propose=(revise, _REVISED),
            other=(revise, _REVISED),
            pin=(confirm_first, frozenset({"read_back"})),
            pin_aloud=(pin_aloud, frozenset({"read_back"})),
        ),
    ),
    # Confirmed, waiting for the PIN typed in the app.
    "pin": _with_small_talk(
        "pin",
        _rules(
            pin=(check_pin, frozenset({"checking_pin"})),
            yes=(ask_pin_again, frozenset({"pin", "read_back"})),
            tap_confirm=(ask_pin_again, frozenset({"pin", "read_back"})),
            tool_confirm=(ask_pin_again, frozenset({"pin", "read_back"})),
            no=(cancel, frozenset({"idle"})),
            tap_cancel=(cancel, frozenset({"idle", "pin"})),
            tool_cancel=(cancel, frozenset({"idle", "pin"})),
            change=(revise, _REVISED | {"pin"}),
            command=(revise, _REVISED | {"pin"}),
            tool_propose=(revise, _REVISED | {"pin"}),
            other=(revise, _REVISED | {"pin"}),
            pin_aloud=(pin_aloud, frozenset({"pin"})),
        ),
    ),
    # The session is over: nothing is accepted.
    "ended": {},
    # Inside a turn: the ledger's answers to the action just asked for.
    "proposing": _rules(
        proposal_made=(proposal_made, frozenset({"read_back"})),
        proposal_refused=(proposal_refused, frozenset({"idle"})),
    ),
    "confirming": _rules(
        committed=(committed, frozenset({"idle"})),
        confirm_refused=(confirm_refused, frozenset({"idle"})),
    ),
    "checking_pin": _rules(
        pin_result=(pin_result, frozenset({"confirming", "pin", "idle"})),
    ),
    "fetching": _rules(
        balance_told=(told_balance, frozenset(STORED) - {"ended"}),
        history_told=(told_history, frozenset(STORED) - {"ended"}),
    ),
}


def table_markdown() -> str:
    """The table as Markdown (phase, event, handler, may lead to): voice_server/dialogue/README.md."""
    lines = ["| phase | event | handler | may lead to |", "| --- | --- | --- | --- |"]
    for phase, rules in TRANSITIONS.items():
        if not rules:
            lines.append(f"| {phase} | (anything) | ignored | {phase} |")
        for kind, (handler, targets) in rules.items():
            name = handler.__name__.rstrip("_")
            lines.append(f"| {phase} | {kind} | {name} | {', '.join(sorted(targets))} |")
    return "\n".join(lines) + "\n"
