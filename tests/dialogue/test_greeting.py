"""The first message of a connection: a hello, or, when a payment is still waiting for its answer (the app
reconnected), its read-back and a fresh card, so a tap on the new connection can answer it."""

from __future__ import annotations

from datetime import timedelta

from tests.dialogue.helpers import NOW, PID, WORLD, state_in
from voice_server.dialogue.machine import greet
from voice_server.dialogue.state import Note, Show, Speak


def _shown(actions: tuple[object, ...]) -> list[str]:
    return [a.tool_name for a in actions if isinstance(a, Show)]


def _keys(actions: tuple[object, ...]) -> list[str]:
    return [a.key for a in actions if isinstance(a, Speak)]


def test_a_fresh_session_is_greeted_and_shown_nothing() -> None:
    step = greet(state_in("idle"), NOW, WORLD)
    assert _keys(step.actions) == ["greeting"]
    assert _shown(step.actions) == []
    assert step.state == state_in("idle")


def test_a_proposal_waiting_for_its_answer_is_read_back_with_a_new_card() -> None:
    state = state_in("read_back")
    step = greet(state, NOW, WORLD)
    keys = _keys(step.actions)
    assert keys[0] == "greeting_pending" and "readback.send_phone" in keys and keys[-1] == "readback.question"
    (card,) = [a for a in step.actions if isinstance(a, Show)]
    assert card.tool_name == "show_proposal"
    assert card.parameters["proposal_id"] == str(PID) and card.parameters["version"] == 1
    assert card.parameters["amount"] == "500.00" and card.parameters["phone"] == "254733444555"
    assert step.state == state  # nothing is decided by saying hello again
    assert [a.outcome for a in step.actions if isinstance(a, Note)] == ["answered"]


def test_a_proposal_waiting_for_the_pin_shows_the_card_and_the_keypad_again() -> None:
    step = greet(state_in("pin"), NOW, WORLD)
    assert _shown(step.actions) == ["show_proposal", "request_pin"]
    assert "readback.question_pin" in _keys(step.actions)


def test_an_expired_proposal_is_not_shown_again() -> None:
    later = NOW + timedelta(seconds=121)  # the helpers' proposals expire 120 s after NOW
    step = greet(state_in("read_back"), later, WORLD)
    assert _keys(step.actions) == ["greeting"]
    assert _shown(step.actions) == []


def test_the_card_is_read_back_in_the_language_of_the_session() -> None:
    state = state_in("read_back").model_copy(update={"language": "sw"})
    step = greet(state, NOW, WORLD)
    said = " ".join(a.text for a in step.actions if isinstance(a, Speak))
    assert said.startswith("Karibu tena") and "Mary Wambui" in said
