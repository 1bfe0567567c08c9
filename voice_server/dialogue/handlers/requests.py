"""Handlers: putting a request together. A command starts or adds to a `Draft`; the answer to a slot fills
it; a name two contacts fit is chosen; what is still missing is asked; a complete one is proposed to the
ledger. An answer that fits nothing is asked again twice, the third time the request is dropped."""

from __future__ import annotations

from voice_server.dialogue import understanding as u
from voice_server.dialogue.drafts import (
    candidates_of,
    changes,
    draft_from_speech,
    draft_from_tool,
    missing_slot,
)
from voice_server.dialogue.events import Event, ToolPropose, Utterance
from voice_server.dialogue.handlers.small_talk import not_understood
from voice_server.dialogue.names import unknown_name
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.readback import read_back
from voice_server.dialogue.state import Cancel, Candidate, Draft, Propose, recipient_of
from voice_server.dialogue.turn import Turn, ask_choice, reprompt, reset

MAX_REASKS = 2


def new_request(turn: Turn, event: Event) -> None:
    """A spoken command (or the propose tool) with no proposal live: read back, ask, or refuse."""
    s = turn.state
    if isinstance(event, ToolPropose):
        draft, candidates, errors = draft_from_tool(event.fields, turn.world)
    else:
        assert isinstance(event, Utterance)
        draft, candidates, errors = draft_from_speech(event.text, turn.world, event.asr_confidence)
    if draft is None:
        not_understood(turn, event)
        return
    live = s.proposal  # a proposal still pending (a correction being completed) is revised, never left behind
    reset(s)
    s.proposal = live
    advance(turn, draft, candidates, errors)


def merge_request(turn: Turn, event: Event) -> None:
    """A command while a request is being filled: same type adds to it, another type starts over."""
    s = turn.state
    assert isinstance(event, Utterance)
    draft, candidates, errors = draft_from_speech(event.text, turn.world, event.asr_confidence)
    if draft is None or s.draft is None or draft.type != s.draft.type:
        new_request(turn, event)
        return
    merged = s.draft.model_copy(
        update={k: v for k, v in draft.model_dump().items() if v not in ("", None) and k != "type"}
    )
    advance(turn, merged, candidates, errors)


def answer_slot(turn: Turn, event: Event) -> None:
    """The answer to the slot asked ("How much?" -> "mia tano")."""
    s = turn.state
    assert isinstance(event, Utterance) and s.draft is not None and s.asked is not None
    heard = u.read_slot(s.asked, event.text, turn.world.contacts)
    if heard.errors:
        refuse_input(turn, heard.errors[0])
        return
    if heard.empty:
        unclear(turn, event)
        return
    draft = s.draft.model_copy(update=changes(heard, turn.world))
    advance(turn, draft, candidates_of(heard.candidates, turn.world), ())


def pick_candidate(turn: Turn, event: Event) -> None:
    """Two contacts fit: the answer picks one by name, position or number, or is unclear."""
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
    advance(turn, draft, [], ())


def advance(turn: Turn, draft: Draft, candidates: list[Candidate], errors: tuple[str, ...]) -> None:
    """The next move for a request: refuse what is wrong, choose, ask what is missing, or propose."""
    s = turn.state
    s.draft = draft
    if errors:
        refuse_input(turn, errors[0])
        return
    if len(candidates) >= 2:
        s.phase, s.candidates, s.asked, s.unclear = Phase.CHOOSING, candidates, "choice", 0
        ask_choice(turn)
        turn.note("asked", asked="choice")
        return
    missing = missing_slot(draft)
    if missing:
        first_ask = s.asked != missing or s.phase != Phase.FILLING
        if first_ask:
            s.unclear = 0
        s.phase, s.asked, s.candidates = Phase.FILLING, missing, []
        # A name the contacts do not hold is named back, with the offer of a number (not only "who?").
        unknown = unknown_name(draft.text) if missing == "recipient" and first_ask else None
        if unknown:
            turn.say("ask.recipient_unknown", name=unknown)
        else:
            turn.say(f"ask.{missing}")
        turn.note("asked", asked=missing)
        return
    assert draft.amount is not None
    fields = recipient_of(draft, filled=True)
    revise = s.proposal.proposal_id if s.proposal is not None else None
    s.revising = revise is not None
    s.phase, s.asked, s.candidates = Phase.PROPOSING, None, []
    turn.actions.append(Propose(draft.type, draft.amount, fields, revise, draft.text, draft.confidence))


def refuse_input(turn: Turn, code: str) -> None:
    """What was heard cannot be used (a bad number, an amount out of range)."""
    s = turn.state
    if s.proposal is not None:
        # A correction that cannot be used leaves the proposal as it was read back.
        turn.say(f"rejected.{code}")
        s.phase = Phase.READ_BACK
        s.draft, s.candidates, s.asked = None, [], None
        read_back(turn, s.proposal, changed=False)
        turn.note("rejected", rejected=code)
        return
    reset(s)
    turn.say(f"rejected.{code}")
    turn.note("rejected", rejected=code)


def unclear(turn: Turn, event: Event) -> None:
    """An answer that fits nothing: asked again twice, the third time the request is cancelled."""
    s = turn.state
    s.unclear += 1
    if s.unclear > MAX_REASKS:
        if s.proposal is not None:
            turn.actions.append(Cancel(s.proposal.proposal_id, "not_understood"))
        reset(s)
        turn.say("gave_up")
        turn.note("cancelled", rejected="not_understood", cancelled=True)
        return
    turn.say("reask.prefix")
    if s.phase == Phase.READ_BACK:
        turn.say("reask.read_back")
    elif s.phase == Phase.PIN:
        turn.say("reask.pin")
    else:
        reprompt(turn)
    turn.note(
        "asked",
        asked=s.asked
        if s.phase in (Phase.FILLING, Phase.CHOOSING)
        else ("pin" if s.phase == Phase.PIN else None),
    )
