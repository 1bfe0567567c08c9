"""The dialogue: `step(state, event, now, world) -> Step(new state, actions)`. Pure: no database, no network,
no clock of its own (time comes in as `now`).

A step classifies the event (`classify.kind_of`), checks expiry first (`expiry`), then looks up the one row
of the table for the phase and the event kind (`table.TRANSITIONS`, in the manner of h11's `_state.py`)
and runs its handler (`handlers/`, by concern). An event kind not listed for a phase is ignored (the state
does not change). Read the rules against `shared/spec/transcripts.md`:

- nothing is confirmed but the exact proposal (id and version) that was read back, after a yes, a tap or the
  agent's confirm tool; a correction revises it (version + 1) and reads it back again;
- a bare no cancels; the first and second unclear answers are asked again, the third cancels;
- the ledger decides who may spend (sql/0019): the proposal it makes says whether its confirmation needs
  the PIN (`needs_pin`, told in the read-back and asked after the yes), a confirmation it finds needing the
  PIN after all (`pin_required`) moves to the PIN step for the same proposal, and it refuses a locked user
  (`pin_locked`) or a missing PIN (`pin_not_set`) itself; nothing here decides it;
- a PIN said aloud (`pin_speech`) is never read as anything: the person is asked to type it;
- an unanswered proposal expires (the ledger's `expires_at`), a session at `session_expires_at`: expiry is
  checked first at every step, and ends everything.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from voice_server.dialogue import understanding as u
from voice_server.dialogue.classify import kind_of
from voice_server.dialogue.events import Event, Utterance
from voice_server.dialogue.expiry import expire
from voice_server.dialogue.handlers.small_talk import ignore
from voice_server.dialogue.kinds import EventKind
from voice_server.dialogue.phases import RESTING, Phase
from voice_server.dialogue.readback import read_back
from voice_server.dialogue.state import DialogueState, Show, Step, World
from voice_server.dialogue.table import TRANSITIONS, table_markdown
from voice_server.dialogue.turn import MAX_TEXT, Turn

# Events that leave a pending "your proposal expired" notice for later, and those it answers.
_KEEP_EXPIRED_NOTICE = frozenset(
    {
        EventKind.TICK,
        EventKind.BALANCE_TOLD,
        EventKind.HISTORY_TOLD,
        EventKind.PAYOUT_SETTLED,
        EventKind.SPENDING_TOLD,
    }
)
_TOLD_EXPIRED_NOTICE = frozenset({EventKind.YES, EventKind.TAP_CONFIRM, EventKind.TOOL_CONFIRM})


# --- the step -----------------------------------------------------------------------------------------------


def step(state: DialogueState, event: Event, now: datetime, world: World) -> Step:
    """Apply one event. Never raises for anything a person can do; unknown pairs are ignored."""
    if isinstance(event, Utterance) and len(event.text) > MAX_TEXT:
        event = replace(event, text=event.text[:MAX_TEXT])  # no one says more in one breath
    turn = Turn(state.model_copy(deep=True), world, now.timestamp())
    kind = kind_of(event, turn.state)
    if isinstance(event, Utterance) and turn.state.phase != Phase.ENDED:
        turn.state.language = u.detect_language(event.text, turn.state.language, event.language)
    if turn.state.phase in RESTING and expire(turn, kind):
        return Step(turn.state, tuple(turn.actions))
    phase = Phase(turn.state.phase)
    rule = TRANSITIONS.get(phase, {}).get(kind)
    if rule is None:
        ignore(turn, event)
        return Step(turn.state, tuple(turn.actions))
    if kind not in _KEEP_EXPIRED_NOTICE:
        turn.state.expired_notice = turn.state.expired_notice and kind in _TOLD_EXPIRED_NOTICE
    back = turn.state.resume
    rule.handler(turn, event)
    allowed = {back} if rule.back else rule.targets
    if turn.state.phase not in allowed:  # a broken rule is a bug, never a silent wrong state
        raise AssertionError(
            f"{phase} --{kind}--> {turn.state.phase}, table allows {sorted(map(str, allowed))}"
        )
    return Step(turn.state, tuple(turn.actions))


def greet(state: DialogueState, now: datetime, world: World) -> Step:
    """The first message of a connection. When a proposal is still waiting for its answer (the person's app
    lost its connection and came back), it is read back and its card shown again: the card of the old
    connection can no longer be tapped, and a payment must never be answerable only by voice."""
    turn = Turn(state.model_copy(deep=True), world, now.timestamp())
    p = turn.state.proposal
    waiting = turn.state.phase in (Phase.READ_BACK, Phase.PIN) and p is not None
    if p is None or not waiting or (p.expires_at is not None and turn.now >= p.expires_at):
        turn.say("greeting")  # an expired proposal is voided by the next step, as at any other turn
    else:
        turn.say("greeting_pending")
        read_back(turn, p, changed=False)
        if turn.state.phase == Phase.PIN:
            turn.actions.append(Show("request_pin", {"proposal_id": str(p.proposal_id)}))
    turn.note("answered")
    return Step(turn.state, tuple(turn.actions))


# The names other modules (and the tests) import from here.
__all__ = ["TRANSITIONS", "greet", "kind_of", "step", "table_markdown"]
