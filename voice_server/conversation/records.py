"""What a turn keeps of itself in `voice_session_turns` (sql/0024, 0025): built here, written by the
turn's own store (`voice_turn_store`, sql/0032) in the turn's transaction, so a turn that happened is never
without its record, and the record costs no round trip of its own. Read back by `voice_server.session_turns`.

A PIN is stored as a marker only; its digits never reach the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from voice_server.dialogue.events import PinEntry, Tap, Tick, UserEvent, Utterance

if TYPE_CHECKING:
    from voice_server.conversation.driver import TurnResult

MAX_HEARD = 2000
# What is kept of an utterance the dialogue took for a PIN said aloud (it is never used, nor kept).
SPOKEN_PIN = "(a PIN said aloud: not kept)"


@dataclass(frozen=True)
class Keep:
    """That a turn is kept, and where it came from: the WebSocket, or an agent tool (its name and what the
    agent passed, as validated)."""

    channel: Literal["ws", "tools"]
    tool: str | None = None
    parameters: dict[str, Any] | None = None


def _confidence(value: float | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(max(0.0, min(1.0, value)))).quantize(Decimal("0.001"))


def turn_record(event: UserEvent, result: TurnResult, keep: Keep) -> dict[str, Any] | None:
    """The row of one turn (without its seq, which the store numbers): a person's utterance, tap or PIN, an
    agent tool's call (`parse_command` is kept as the utterance it carries) or a receipt told when a payout
    settled (a tick that said something). None: nothing to keep (a tick that told nothing). Values are
    JSON-ready once `default=str` turns amounts, ids and times into strings."""
    heard: str | None = None
    confidence: Decimal | None = None
    tap: str | None = None
    if isinstance(event, Utterance):
        kind = "utterance"
        heard, confidence = event.text[:MAX_HEARD], _confidence(event.asr_confidence)
        if result.pin_aloud:  # the dialogue took it for a PIN said aloud: nothing of it is kept
            heard = SPOKEN_PIN
    elif isinstance(event, Tap):
        kind, tap = "tap", event.action
    elif isinstance(event, PinEntry):
        kind = "pin"  # the digits are not kept: only that a PIN was entered
    elif isinstance(event, Tick):
        if not result.say:
            return None
        kind = "receipt"
    elif keep.tool is not None:
        kind = "tool"
    else:
        return None
    params = None
    if kind == "tool" and keep.parameters is not None:
        params = {k: v for k, v in keep.parameters.items() if k != "session_id" and v is not None}
    return {
        "input_kind": kind,
        "heard": heard,
        "asr_confidence": confidence,
        "tap": tap,
        "answered": [say.text for say in result.say],
        "tool_calls": [{"tool": e.tool_name, "parameters": e.parameters} for e in result.client_events],
        "proposal": result.proposal,
        "outcome": result.outcome,
        "asked": result.asked,
        "rejected": result.rejected,
        "committed": result.committed,
        "balance": result.balance,
        "language": result.language,
        "channel": "tools" if keep.tool is not None else keep.channel,
        "tool_name": keep.tool[:100] if keep.tool is not None else None,
        "tool_parameters": params,
        "cancelled": result.cancelled,
    }
