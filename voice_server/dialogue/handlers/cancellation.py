"""Handlers: cancellation. A bare no, a cancel tap or the cancel tool drops the request or proposal; a goodbye
ends the session (and cancels what was live)."""

from __future__ import annotations

from voice_server.dialogue.events import Event, Tap, ToolCancel
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import Cancel, EndSession
from voice_server.dialogue.turn import Turn, reset


def goodbye(turn: Turn, event: Event) -> None:
    s = turn.state
    had = s.proposal is not None
    if s.proposal is not None:
        turn.actions.append(Cancel(s.proposal.proposal_id, "session_ended"))
    reset(s)
    s.phase = Phase.ENDED
    turn.say("goodbye_cancelled" if had else "goodbye")
    turn.actions.append(EndSession("ended"))
    turn.note("ended", cancelled=had)


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
    reset(s)
    turn.say("cancelled")
    turn.note("cancelled", cancelled=True)
