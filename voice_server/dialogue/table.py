"""The dialogue's rules as data, in the manner of h11's `_state.py`: `TRANSITIONS[phase][event kind]` is the
one row that says which handler runs and where it may lead. An event kind not listed for a phase is
ignored (the state does not change); `machine.step` checks after every handler that it went where its row
says, so a wrong transition is a bug that fails loudly, never a silent wrong state.

A row's targets are exact: where a handler always leads to one phase, the row names that phase. Where the
outcome depends on what was said (a request may be complete, miss a slot, or name two contacts) the row
names each phase it can lead to. The answers to a question (balance, history, spending) go back to the
phase the question was asked in: those rows are `back`, checked against that one phase.
"""

from __future__ import annotations

from typing import NamedTuple

from voice_server.dialogue.handlers.cancellation import cancel, goodbye
from voice_server.dialogue.handlers.confirmation import (
    accept_spoken,
    accept_tap,
    committed,
    confirm_refused,
    proposal_made,
    proposal_refused,
)
from voice_server.dialogue.handlers.corrections import revise
from voice_server.dialogue.handlers.pin import ask_pin_again, check_pin, confirm_first, pin_aloud, pin_result
from voice_server.dialogue.handlers.questions import (
    fetch_balance,
    fetch_history,
    fetch_spending,
    told_balance,
    told_history,
    told_spending,
)
from voice_server.dialogue.handlers.receipts import tell_receipt
from voice_server.dialogue.handlers.requests import (
    answer_slot,
    merge_request,
    new_request,
    pick_candidate,
    unclear,
)
from voice_server.dialogue.handlers.small_talk import (
    help_,
    not_understood,
    nothing_to_cancel,
    nothing_to_confirm,
    stay,
)
from voice_server.dialogue.kinds import EventKind as K
from voice_server.dialogue.phases import OPEN, Phase
from voice_server.dialogue.turn import Handler


class Rule(NamedTuple):
    """One row: the handler, and the phases it may lead to. `back`: it leads back to the phase the question
    was asked in (the state's `resume`), exactly that one of `targets`."""

    handler: Handler
    targets: frozenset[Phase]
    back: bool = False


Rules = dict[K, Rule]


def to(*phases: Phase) -> frozenset[Phase]:
    """The phases a row may lead to (most rows name one)."""
    return frozenset(phases)


IDLE, FILLING, CHOOSING, READ_BACK, PIN, ENDED = (
    Phase.IDLE,
    Phase.FILLING,
    Phase.CHOOSING,
    Phase.READ_BACK,
    Phase.PIN,
    Phase.ENDED,
)
PROPOSING, CONFIRMING, CHECKING_PIN, FETCHING = (
    Phase.PROPOSING,
    Phase.CONFIRMING,
    Phase.CHECKING_PIN,
    Phase.FETCHING,
)

# A request's next move: refused (idle), a slot asked (filling), two contacts to choose from (choosing), or
# complete and proposed to the ledger (proposing).
_ASKING = to(IDLE, FILLING, CHOOSING, PROPOSING)
# While a correction is completed the earlier proposal is still live: a refusal goes back to its read-back.
_ASKING_LIVE = _ASKING | {READ_BACK}
# A correction of a live proposal: as a request, or asked again (read_back), or dropped after three tries.
_REVISED = _ASKING_LIVE


def _open(phase: Phase, rules: Rules) -> Rules:
    """The rows every open resting phase has (time passing, questions, help, goodbye, a settled payout),
    then the phase's own."""
    out: Rules = {
        K.TICK: Rule(stay, to(phase)),
        K.BALANCE: Rule(fetch_balance, to(FETCHING)),
        K.HISTORY: Rule(fetch_history, to(FETCHING)),
        K.HELP: Rule(help_, to(phase)),
        K.GOODBYE: Rule(goodbye, to(ENDED)),
    }
    out.update(rules)
    out[K.PAYOUT_SETTLED] = Rule(tell_receipt, to(phase))
    out[K.SPENDING] = Rule(fetch_spending, to(FETCHING))
    return out


TRANSITIONS: dict[Phase, Rules] = {
    # Nothing under way: a command starts a request; a yes or a PIN has nothing to answer.
    IDLE: _open(
        IDLE,
        {
            K.COMMAND: Rule(new_request, _ASKING),
            K.TOOL_PROPOSE: Rule(new_request, _ASKING),
            K.YES: Rule(nothing_to_confirm, to(IDLE)),
            K.TAP_CONFIRM: Rule(nothing_to_confirm, to(IDLE)),
            K.TOOL_CONFIRM: Rule(nothing_to_confirm, to(IDLE)),
            K.NO: Rule(nothing_to_cancel, to(IDLE)),
            K.CHANGE: Rule(not_understood, to(IDLE)),
            K.OTHER: Rule(not_understood, to(IDLE)),
            K.PIN_ALOUD: Rule(pin_aloud, to(IDLE)),
        },
    ),
    # A slot was asked ("How much?"): the answer fills it; a bare no drops the request.
    FILLING: _open(
        FILLING,
        {
            K.COMMAND: Rule(merge_request, _ASKING_LIVE),
            K.TOOL_PROPOSE: Rule(new_request, _ASKING_LIVE),
            K.OTHER: Rule(answer_slot, _ASKING_LIVE),
            K.CHANGE: Rule(answer_slot, _ASKING_LIVE),
            K.YES: Rule(unclear, to(FILLING, IDLE)),  # asked again; the third time dropped
            K.NO: Rule(cancel, to(IDLE)),
            K.TAP_CANCEL: Rule(cancel, to(IDLE, FILLING)),  # a tap on another proposal's card: ignored
            K.TOOL_CANCEL: Rule(cancel, to(IDLE, FILLING)),
            K.PIN_ALOUD: Rule(pin_aloud, to(FILLING)),
        },
    ),
    # Two contacts fit: the answer picks one by name or position.
    CHOOSING: _open(
        CHOOSING,
        {
            K.COMMAND: Rule(new_request, _ASKING_LIVE),
            K.TOOL_PROPOSE: Rule(new_request, _ASKING_LIVE),
            K.OTHER: Rule(pick_candidate, _ASKING_LIVE),
            K.CHANGE: Rule(pick_candidate, _ASKING_LIVE),
            K.YES: Rule(unclear, to(CHOOSING, IDLE)),
            K.NO: Rule(cancel, to(IDLE)),
            K.TAP_CANCEL: Rule(cancel, to(IDLE, CHOOSING)),
            K.TOOL_CANCEL: Rule(cancel, to(IDLE, CHOOSING)),
            K.PIN_ALOUD: Rule(pin_aloud, to(CHOOSING)),
        },
    ),
    # A proposal was read back: only a yes/tap/confirm tool of this exact version goes on (to the PIN step
    # when the ledger said the confirmation needs it); another version is refused and read back again.
    READ_BACK: _open(
        READ_BACK,
        {
            K.YES: Rule(accept_spoken, to(CONFIRMING, PIN)),
            K.TOOL_CONFIRM: Rule(accept_spoken, to(CONFIRMING, PIN, READ_BACK)),
            K.TAP_CONFIRM: Rule(accept_tap, to(CONFIRMING, PIN, READ_BACK)),
            K.NO: Rule(cancel, to(IDLE)),
            K.TAP_CANCEL: Rule(cancel, to(IDLE, READ_BACK)),
            K.TOOL_CANCEL: Rule(cancel, to(IDLE, READ_BACK)),
            K.CHANGE: Rule(revise, _REVISED),
            K.COMMAND: Rule(revise, _REVISED),
            K.TOOL_PROPOSE: Rule(revise, _REVISED),
            K.OTHER: Rule(revise, _REVISED),
            K.PIN: Rule(confirm_first, to(READ_BACK)),
            K.PIN_ALOUD: Rule(pin_aloud, to(READ_BACK)),
        },
    ),
    # Confirmed, waiting for the PIN typed in the app.
    PIN: _open(
        PIN,
        {
            K.PIN: Rule(check_pin, to(CHECKING_PIN)),
            K.YES: Rule(ask_pin_again, to(PIN)),
            K.TAP_CONFIRM: Rule(ask_pin_again, to(PIN, READ_BACK)),
            K.TOOL_CONFIRM: Rule(ask_pin_again, to(PIN, READ_BACK)),
            K.NO: Rule(cancel, to(IDLE)),
            K.TAP_CANCEL: Rule(cancel, to(IDLE, PIN)),
            K.TOOL_CANCEL: Rule(cancel, to(IDLE, PIN)),
            K.CHANGE: Rule(revise, _REVISED | {PIN}),
            K.COMMAND: Rule(revise, _REVISED | {PIN}),
            K.TOOL_PROPOSE: Rule(revise, _REVISED | {PIN}),
            K.OTHER: Rule(revise, _REVISED | {PIN}),
            K.PIN_ALOUD: Rule(pin_aloud, to(PIN)),
        },
    ),
    # The session is over: nothing is accepted.
    ENDED: {},
    # Inside a turn: the ledger's answers to the action just asked for.
    PROPOSING: {
        K.PROPOSAL_MADE: Rule(proposal_made, to(READ_BACK)),
        K.PROPOSAL_REFUSED: Rule(proposal_refused, to(IDLE)),
    },
    CONFIRMING: {
        K.COMMITTED: Rule(committed, to(IDLE)),
        K.CONFIRM_REFUSED: Rule(confirm_refused, to(IDLE, PIN)),  # pin_required: the PIN step
    },
    CHECKING_PIN: {
        K.PIN_RESULT: Rule(pin_result, to(CONFIRMING, PIN, IDLE)),  # right, wrong (tries left), locked
    },
    FETCHING: {
        K.BALANCE_TOLD: Rule(told_balance, frozenset(OPEN), back=True),
        K.HISTORY_TOLD: Rule(told_history, frozenset(OPEN), back=True),
        K.SPENDING_TOLD: Rule(told_spending, frozenset(OPEN), back=True),
    },
}


def table_markdown() -> str:
    """The table as Markdown (phase, event, handler, may lead to): voice_server/dialogue/README.md."""
    lines = ["| phase | event | handler | may lead to |", "| --- | --- | --- | --- |"]
    for phase, rules in TRANSITIONS.items():
        if not rules:
            lines.append(f"| {phase} | (anything) | ignored | {phase} |")
        for kind, rule in rules.items():
            name = rule.handler.__name__.rstrip("_")
            where = ", ".join(sorted(rule.targets))
            if rule.back:
                where = f"back where it was asked ({where})"
            lines.append(f"| {phase} | {kind} | {name} | {where} |")
    return "\n".join(lines) + "\n"
