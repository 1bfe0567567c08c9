"""Handlers: corrections. A change while a proposal is live ("no, make it 700", or the propose tool again)
is proposed as the next version of the same proposal and read back again."""

from __future__ import annotations

from voice_server.dialogue import understanding as u
from voice_server.dialogue.drafts import candidates_of, changes, draft_from_tool, draft_of
from voice_server.dialogue.events import Event, ToolPropose, Utterance
from voice_server.dialogue.handlers.requests import advance, refuse_input, unclear
from voice_server.dialogue.state import Draft
from voice_server.dialogue.turn import Turn


def revise(turn: Turn, event: Event) -> None:
    """A correction while a proposal is live: the changed request is proposed as version + 1."""
    s = turn.state
    p = s.proposal
    assert p is not None
    if isinstance(event, ToolPropose):
        draft, candidates, errors = draft_from_tool(event.fields, turn.world)
        if draft is None:
            unclear(turn, event)
            return
        base = draft_of(p)
        if draft.type == p.type:
            draft = base.model_copy(
                update={k: v for k, v in draft.model_dump().items() if v not in ("", None)}
            )
        advance(turn, draft, candidates, errors)
        return
    assert isinstance(event, Utterance)
    heard = u.read_change(event.text, p.type, turn.world.contacts)
    if heard.empty:
        unclear(turn, event)
        return
    if heard.errors:
        refuse_input(turn, heard.errors[0])
        return
    base = draft_of(p)
    if heard.type is not None and heard.type != p.type:
        base = Draft(type=heard.type, amount=p.amount)
    draft = base.model_copy(update={**changes(heard, turn.world), "text": event.text})
    advance(turn, draft, candidates_of(heard.candidates, turn.world), ())
