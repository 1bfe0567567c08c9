"""One step being worked out (`Turn`: a copy of the state, the actions asked for so far), and the few moves
every handler shares: start over, ask the open question again, name the resting phase to come back to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from voice_server.dialogue.events import Event
from voice_server.dialogue.phases import RESTING, Phase
from voice_server.dialogue.state import Action, DialogueState, Note, Speak, World
from voice_server.dialogue.wording import Language, has_line, line, money

MAX_TEXT = 2000


@dataclass
class Turn:
    """One step being worked out: a copy of the state and the actions asked for so far."""

    state: DialogueState
    world: World
    now: float
    actions: list[Action] = field(default_factory=list)

    @property
    def lang(self) -> Language:
        return self.state.language

    def say(self, key: str, **params: object) -> None:
        self.actions.append(Speak(line(self.lang, key, **params), self.lang, key))

    def note(self, outcome: str, **kw: object) -> None:
        self.actions.append(Note(outcome, **kw))  # type: ignore[arg-type]

    def money(self, amount: Decimal) -> str:
        return money(self.lang, amount)


Handler = Callable[[Turn, Event], None]


def reset(s: DialogueState) -> None:
    """Back to idle with nothing under way (what ends, cancels or refuses a request leaves behind)."""
    s.phase = Phase.IDLE
    s.draft = None
    s.asked = None
    s.candidates = []
    s.proposal = None
    s.unclear = 0
    s.confirm_voice = False
    s.confirm_tool = False
    s.resume = None
    s.revising = False


def reprompt(turn: Turn) -> None:
    """After an answer in the middle of a request, ask its question again."""
    s = turn.state
    if s.phase == Phase.READ_BACK and s.proposal is not None:
        turn.say("readback.question")
    elif s.phase == Phase.PIN:
        turn.say("ask.pin")
    elif s.phase == Phase.FILLING and s.asked:
        turn.say(f"ask.{s.asked}")
    elif s.phase == Phase.CHOOSING:
        ask_choice(turn)


def resting_phase(phase: Phase) -> Phase:
    """The phase a question was asked in, to come back to once it is answered (never a transient one)."""
    if phase in RESTING:
        return phase
    raise AssertionError(f"not a resting phase: {phase}")


def ask_choice(turn: Turn) -> None:
    names = [c.name for c in turn.state.candidates]
    options = ", ".join(names[:-1]) + f" {line(turn.lang, 'ask.or')} " + names[-1]
    turn.say("ask.choice", options=options)


def has_rejection(code: str) -> bool:
    """Whether a refusal code has words of its own (any other is told with the generic line)."""
    return has_line("en", f"rejected.{code}")
