"""Handlers: the PIN step. Whether a payment needs the PIN, how many tries are left and whether the user is
locked are the ledger's answers (sql/0019_who_may_spend.sql: `ledger_needs_pin`, `ledger_pin_attempt`,
`ledger_confirm`); here the PIN is only asked for and the ledger's answer relayed. A PIN said aloud is
never used: the person is asked to type it."""

from __future__ import annotations

from voice_server.dialogue.events import Event, PinEntry, PinResult, Tap, ToolConfirm
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.readback import same_version
from voice_server.dialogue.state import Cancel, CheckPin, Confirm, Show
from voice_server.dialogue.turn import Turn, reprompt, reset


def _refuse(turn: Turn, code: str) -> None:
    """The ledger refused the PIN step (locked, or no PIN set): the proposal is cancelled, the person told."""
    s = turn.state
    cancelled = s.proposal is not None
    if s.proposal is not None:
        turn.actions.append(Cancel(s.proposal.proposal_id, code))
    reset(s)
    turn.say(f"rejected.{code}")
    turn.note("rejected", rejected=code, cancelled=cancelled)


def ask_pin(turn: Turn, *, tool: bool) -> None:
    """The PIN step for the proposal read back. An agent's tool cannot carry a PIN: it is told
    `pin_required`, and the person finishes the same proposal on the app's keypad."""
    s = turn.state
    p = s.proposal
    assert p is not None
    s.phase, s.unclear = Phase.PIN, 0
    turn.say("pin.required_tool" if tool else "ask.pin")
    turn.actions.append(Show("request_pin", {"proposal_id": str(p.proposal_id)}))
    turn.note("asked", asked="pin", rejected="pin_required" if tool else None)


def ask_pin_again(turn: Turn, event: Event) -> None:
    """A yes (or a tap) while the PIN is awaited: the PIN is still needed."""
    s = turn.state
    assert s.proposal is not None
    if isinstance(event, Tap | ToolConfirm) and not same_version(turn, event.proposal_id, event.version):
        return
    ask_pin(turn, tool=isinstance(event, ToolConfirm))


def confirm_first(turn: Turn, event: Event) -> None:
    """A PIN typed before the yes: not an answer to anything (the yes must come first)."""
    turn.say("confirm_first")
    turn.note("asked", asked=None)


def pin_aloud(turn: Turn, event: Event) -> None:
    """A PIN said aloud: not a command, not an answer; nothing of it is kept. The person is told to type it
    (on the keypad, when a proposal waits for it)."""
    s = turn.state
    turn.say("pin.spoken")
    if s.phase in (Phase.READ_BACK, Phase.PIN) and s.proposal is not None:
        turn.actions.append(Show("request_pin", {"proposal_id": str(s.proposal.proposal_id)}))
        turn.note("asked", asked="pin")
        return
    reprompt(turn)
    turn.note("asked", asked=s.asked if s.phase in (Phase.FILLING, Phase.CHOOSING) else None)


def check_pin(turn: Turn, event: Event) -> None:
    """A PIN typed in the PIN step: the ledger checks it and counts the attempt (`ledger.pins`)."""
    assert isinstance(event, PinEntry)
    turn.state.phase = Phase.CHECKING_PIN
    turn.actions.append(CheckPin(event.digits))


def pin_result(turn: Turn, event: Event) -> None:
    """The ledger's answer to the PIN, relayed: right confirms the proposal, wrong asks again with the tries
    the ledger says are left, and locked (or a wrong one with none left) or no PIN set cancels it."""
    assert isinstance(event, PinResult)
    s = turn.state
    p = s.proposal
    assert p is not None
    if event.outcome == "ok":
        s.phase = Phase.CONFIRMING
        turn.actions.append(Confirm(p.proposal_id, p.version, s.confirm_voice))
        return
    if event.outcome == "wrong" and event.attempts_left > 0:
        s.phase = Phase.PIN
        turn.say("pin.wrong", left=event.attempts_left)
        turn.actions.append(Show("request_pin", {"proposal_id": str(p.proposal_id)}))
        turn.note("asked", asked="pin", rejected="wrong_pin")
        return
    code = "pin_not_set" if event.outcome == "not_set" else "pin_locked"
    _refuse(turn, code)
