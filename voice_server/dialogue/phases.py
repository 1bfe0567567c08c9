"""Where a conversation is: the dialogue's phases. `StrEnum`, so each phase is stored and sent as the very
string it always was (`voice_sessions.dialogue_state`, transcripts, `shared/spec/`)."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    # Phases a conversation rests in between turns (the ones ever stored).
    IDLE = "idle"
    FILLING = "filling"  # a slot was asked ("How much?")
    CHOOSING = "choosing"  # two contacts fit the name
    READ_BACK = "read_back"  # a proposal was read back, waiting for the yes
    PIN = "pin"  # confirmed, waiting for the PIN typed in the app
    ENDED = "ended"
    # Phases inside one turn, while the driver carries out an action and feeds the ledger's answer back.
    PROPOSING = "proposing"
    CONFIRMING = "confirming"
    CHECKING_PIN = "checking_pin"
    FETCHING = "fetching"


RESTING: tuple[Phase, ...] = (
    Phase.IDLE,
    Phase.FILLING,
    Phase.CHOOSING,
    Phase.READ_BACK,
    Phase.PIN,
    Phase.ENDED,
)
# Resting phases a request is under way in or could start from (every resting phase but the end).
OPEN: tuple[Phase, ...] = RESTING[:-1]
