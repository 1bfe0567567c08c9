"""Phases and event kinds are enums whose values are the strings stored in `voice_sessions.dialogue_state`
and written in transcripts: a state stored before they were enums reads back, and is stored, the same."""

from __future__ import annotations

import json

import pytest

from voice_server.dialogue.kinds import EventKind
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import DialogueState
from voice_server.dialogue.table import TRANSITIONS

STORED_BEFORE = ["idle", "filling", "choosing", "read_back", "pin", "ended"]


@pytest.mark.parametrize("name", STORED_BEFORE)
def test_a_stored_phase_reads_back_as_the_enum_and_is_stored_as_the_same_string(name: str) -> None:
    state = DialogueState.model_validate_json(json.dumps({"phase": name, "resume": "read_back"}))
    assert state.phase is Phase(name) and state.resume is Phase.READ_BACK
    stored = json.loads(state.model_dump_json())
    assert stored["phase"] == name and stored["resume"] == "read_back"


def test_a_phase_set_in_code_is_stored_as_its_plain_name() -> None:
    state = DialogueState()
    state.phase = Phase.ENDED
    assert json.loads(state.model_dump_json())["phase"] == "ended"


def test_an_unknown_stored_phase_is_refused() -> None:
    with pytest.raises(ValueError):
        DialogueState.model_validate({"phase": "confirmed"})


def test_the_table_has_a_row_set_for_every_phase_and_uses_only_known_kinds() -> None:
    assert set(TRANSITIONS) == set(Phase)
    assert {kind for rules in TRANSITIONS.values() for kind in rules} <= set(EventKind)
