"""Handlers: the answers that change nothing under way (time passing, help, a yes or a no with nothing to
answer, what was not understood, an event a phase does not take)."""

from __future__ import annotations

from voice_server.dialogue.events import Event
from voice_server.dialogue.turn import Turn, reprompt


def ignore(turn: Turn, event: Event) -> None:
    turn.note("ignored")


def stay(turn: Turn, event: Event) -> None:
    """Time passed and nothing was due."""
    turn.note("ignored")


def nothing_to_confirm(turn: Turn, event: Event) -> None:
    if turn.state.expired_notice:
        turn.state.expired_notice = False
        turn.say("rejected.expired")
        turn.note("rejected", rejected="expired")
        return
    turn.say("nothing_to_confirm")
    turn.note("rejected", rejected="nothing_to_confirm")


def nothing_to_cancel(turn: Turn, event: Event) -> None:
    turn.say("nothing_to_cancel")
    turn.note("answered")


def not_understood(turn: Turn, event: Event) -> None:
    turn.say("rejected.not_understood")
    turn.note("rejected", rejected="not_understood")


def help_(turn: Turn, event: Event) -> None:
    turn.say("help")
    reprompt(turn)
    turn.note("answered")
