"""Expiry, checked first at every step: past `session_expires_at` everything ends (the live proposal is
cancelled); past the proposal's `expires_at` it is cancelled and the person told (again at the next yes)."""

from __future__ import annotations

from voice_server.dialogue.kinds import EventKind
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import Cancel, EndSession
from voice_server.dialogue.turn import Turn, reset

# Events an expiry notice answers by itself (a new request is still handled after it).
_ANSWERED_BY_EXPIRY = frozenset(
    {
        EventKind.TICK,
        EventKind.YES,
        EventKind.NO,
        EventKind.TAP_CONFIRM,
        EventKind.TAP_CANCEL,
        EventKind.TOOL_CONFIRM,
        EventKind.TOOL_CANCEL,
        EventKind.PIN,
        EventKind.OTHER,
        EventKind.CHANGE,
    }
)


def expire(turn: Turn, kind: EventKind) -> bool:
    """Session and proposal expiry, first thing at every step. True when the event is used up by it."""
    s = turn.state
    if s.phase == Phase.ENDED:
        return False
    if s.session_expires_at is not None and turn.now >= s.session_expires_at:
        if s.proposal is not None:
            turn.actions.append(Cancel(s.proposal.proposal_id, "session_expired"))
        reset(s)
        s.phase = Phase.ENDED
        turn.say("session_over")
        turn.actions.append(EndSession("expired"))
        turn.note("ended", rejected="expired", cancelled=True)
        return True
    p = s.proposal
    if p is not None and p.expires_at is not None and turn.now >= p.expires_at:
        turn.actions.append(Cancel(p.proposal_id, "expired"))
        reset(s)
        s.expired_notice = kind == EventKind.TICK  # told again at the next yes
        turn.say("rejected.expired")
        turn.note("rejected", rejected="expired", cancelled=True)
        return kind in _ANSWERED_BY_EXPIRY
    return False
