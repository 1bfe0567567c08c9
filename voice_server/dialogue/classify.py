"""Classification: what an input is, as the transition table names it (`EventKind`). An utterance is read in
the light of the conversation: a PIN said aloud first (never read as anything else), then yes, no, the
questions, a command, a correction. A yes the recogniser is unsure of is `other` (asked again)."""

from __future__ import annotations

from collections.abc import Mapping

from intents import parse
from intents.models import TXN_TYPES
from voice_server.dialogue import understanding as u
from voice_server.dialogue.events import (
    AskBalance,
    AskHistory,
    BalanceTold,
    Committed,
    ConfirmRefused,
    Event,
    HistoryTold,
    PayoutSettled,
    PinEntry,
    PinResult,
    ProposalMade,
    ProposalRefused,
    SpendingTold,
    Tap,
    Tick,
    ToolCancel,
    ToolConfirm,
    ToolPropose,
    Utterance,
)
from voice_server.dialogue.kinds import EventKind
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.pin_speech import is_spoken_pin
from voice_server.dialogue.state import DialogueState

# Below this recogniser confidence (0..1) a spoken yes is asked again.
MIN_YES_CONFIDENCE = 0.5


def kind_of(event: Event, state: DialogueState) -> EventKind:
    """The table's name for an event; utterances are read in the light of the conversation."""
    simple: Mapping[type, EventKind] = {
        Tick: EventKind.TICK,
        PinEntry: EventKind.PIN,
        ToolPropose: EventKind.TOOL_PROPOSE,
        ToolConfirm: EventKind.TOOL_CONFIRM,
        ToolCancel: EventKind.TOOL_CANCEL,
        AskBalance: EventKind.BALANCE,
        AskHistory: EventKind.HISTORY,
        ProposalMade: EventKind.PROPOSAL_MADE,
        ProposalRefused: EventKind.PROPOSAL_REFUSED,
        Committed: EventKind.COMMITTED,
        ConfirmRefused: EventKind.CONFIRM_REFUSED,
        BalanceTold: EventKind.BALANCE_TOLD,
        HistoryTold: EventKind.HISTORY_TOLD,
        PinResult: EventKind.PIN_RESULT,
        PayoutSettled: EventKind.PAYOUT_SETTLED,
        SpendingTold: EventKind.SPENDING_TOLD,
    }
    if isinstance(event, Tap):
        return EventKind.TAP_CONFIRM if event.action == "confirm" else EventKind.TAP_CANCEL
    if isinstance(event, Utterance):
        if _pin_aloud(event.text, state):
            return EventKind.PIN_ALOUD  # a PIN said aloud: never used, never kept
        kind = speech_kind(event.text)
        if kind == EventKind.YES and _poorly_heard(event.asr_confidence):
            return EventKind.OTHER  # a yes the recogniser is unsure of is asked again, never acted on
        return kind
    return simple[type(event)]


def _pin_aloud(text: str, state: DialogueState) -> bool:
    p = state.proposal
    pin_next = state.phase == Phase.PIN or (state.phase == Phase.READ_BACK and p is not None and p.needs_pin)
    return is_spoken_pin(text, pin_next=pin_next, asked=state.asked if state.phase == Phase.FILLING else None)


def _poorly_heard(asr_confidence: float | None) -> bool:
    if asr_confidence is None or asr_confidence != asr_confidence:
        return False
    value = asr_confidence / 100 if asr_confidence > 1 else asr_confidence
    return value < MIN_YES_CONFIDENCE


def speech_kind(text: str) -> EventKind:
    """yes | no | balance | history | spending | help | goodbye | pin_aloud | command | change | other."""
    toks = u.tokens(text)
    if not toks:
        return EventKind.OTHER
    if u.is_yes(toks):
        return EventKind.YES
    if u.is_no(toks):
        return EventKind.NO
    if u.is_help(toks):
        return EventKind.HELP
    if u.is_goodbye(toks):
        return EventKind.GOODBYE
    parsed = parse(text)
    if parsed.type == "spending_summary":
        return EventKind.SPENDING
    if parsed.type == "check_balance" or u.asks_balance(toks):
        return EventKind.BALANCE
    if parsed.type == "transaction_history" or u.asks_history(toks):
        return EventKind.HISTORY
    if parsed.type in TXN_TYPES:
        return EventKind.COMMAND
    if u.has_no_marker(toks) or u.core_of_correction(toks) != " ".join(toks):
        return EventKind.CHANGE
    return EventKind.OTHER
