"""A name the contacts do not hold ("send 500 to Wanjiru") is named back, with the offer of a number, in the
conversation's language; a known name, a number, or a second answer is asked as before."""

from __future__ import annotations

import pytest

from tests.dialogue.helpers import run, state_in
from tests.dialogue.test_rules import said
from voice_server.dialogue.events import Utterance
from voice_server.dialogue.names import unknown_name


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("send 500 to Wanjiru", "Wanjiru"),
        ("send 500 to wanjiru kamau please", "Wanjiru Kamau"),
        ("tuma mia tano kwa Njeri", "Njeri"),
        ("send five hundred to Otieno", "Otieno"),
        ("send 500", None),
        ("send 500 to 0712345678", None),
        ("send 500 to my", None),
    ],
)
def test_the_name_said_after_to_or_kwa(text: str, name: str | None) -> None:
    assert unknown_name(text) == name


def test_an_unknown_name_is_named_and_a_number_offered() -> None:
    state, actions = run(state_in("idle"), Utterance("send 500 to Wanjiru"))
    words = said(actions)
    assert "Wanjiru" in words and "contacts" in words and "phone number" in words, words
    assert state.phase == "filling" and state.asked == "recipient"
    # The person gives a number: the request goes on as any other.
    state, actions = run(state, Utterance("0712345678"))
    assert state.phase == "read_back", said(actions)


def test_in_swahili_too() -> None:
    state = state_in("idle").model_copy(update={"language": "sw"})
    _, actions = run(state, Utterance("tuma mia tano kwa Wanjiru"))
    words = said(actions)
    assert "Sikumpata Wanjiru" in words and "namba" in words, words


def test_a_second_unknown_answer_is_asked_plainly() -> None:
    state, _ = run(state_in("idle"), Utterance("send 500 to Wanjiru"))
    _, actions = run(state, Utterance("purple"))
    assert "Wanjiru" not in said(actions)
