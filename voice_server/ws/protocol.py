"""The wire format of the conversation WebSocket, as pure functions: client frames in, server events out.

It follows what the official `elevenlabs` SDK sends and reads (its `conversational_ai/conversation.py`):
most events are `{"type": X, "<X>_event": {...}}`, but a user transcript travels as
`user_transcription_event` and a tool call as `client_tool_call`, exactly as ElevenLabs does it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

MAX_TEXT_CHARS = 2000
MAX_JSON_DEPTH = 16


class ProtocolError(Exception):
    """A frame the server cannot use; answered with an `error` event, the connection stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Initiation:
    language: Literal["en", "sw"] | None


@dataclass(frozen=True)
class UserMessage:
    text: str


@dataclass(frozen=True)
class ToolResult:
    tool_call_id: str
    result: str
    is_error: bool


@dataclass(frozen=True)
class Pong:
    event_id: int


@dataclass(frozen=True)
class Ignored:
    kind: str


ClientMessage = Initiation | UserMessage | ToolResult | Pong | Ignored

_IGNORED = ("user_activity", "contextual_update")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _storable(text: str) -> bool:
    """JSON may escape a lone UTF-16 surrogate ("\\ud800"), which no UTF-8 text (nor PostgreSQL) can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_client(raw: str) -> ClientMessage:
    """One text frame from the client, or `ProtocolError` saying what is wrong with it."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("invalid_json", "the message is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_message", "a message is a JSON object with a `type`")
    if _depth(data) > MAX_JSON_DEPTH:
        raise ProtocolError("invalid_message", "the message is nested too deeply")
    kind = data.get("type")
    if kind is None and "user_audio_chunk" in data:
        raise ProtocolError("unsupported", "audio is not supported here: send user_message with the text")
    if not isinstance(kind, str):
        raise ProtocolError("invalid_message", "a message is a JSON object with a `type`")
    if kind == "user_message":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError("invalid_message", "user_message needs a non-empty `text`")
        if len(text) > MAX_TEXT_CHARS:
            raise ProtocolError("invalid_message", f"`text` is longer than {MAX_TEXT_CHARS} characters")
        if "\x00" in text:
            raise ProtocolError("invalid_message", "`text` holds a NUL character")
        if not _storable(text):
            raise ProtocolError("invalid_message", "`text` is not valid Unicode (a lone surrogate)")
        return UserMessage(text.strip())
    if kind == "client_tool_result":
        call_id = data.get("tool_call_id")
        result = data.get("result", "")
        if not isinstance(call_id, str) or not call_id:
            raise ProtocolError("invalid_message", "client_tool_result needs the `tool_call_id` it answers")
        if not isinstance(result, str | int | float) or isinstance(result, bool):
            raise ProtocolError("invalid_message", "`result` is a string")
        result = str(result)
        if len(result) > MAX_TEXT_CHARS:
            raise ProtocolError("invalid_message", "`result` is too long")
        return ToolResult(call_id, result, data.get("is_error") is True)
    if kind == "pong":
        event_id = data.get("event_id")
        if isinstance(event_id, bool) or not isinstance(event_id, int | str):
            raise ProtocolError("invalid_message", "pong needs the `event_id` of its ping")
        try:
            return Pong(int(event_id))
        except ValueError:
            raise ProtocolError("invalid_message", "pong needs the `event_id` of its ping") from None
    if kind == "conversation_initiation_client_data":
        variables = data.get("dynamic_variables")
        language = variables.get("language") if isinstance(variables, dict) else None
        return Initiation(language if language in ("en", "sw") else None)
    if kind in _IGNORED:
        return Ignored(kind)
    raise ProtocolError("unknown_type", f"unknown message type {kind[:40]!r}")


def event(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, f"{kind}_event": body}


def initiation_metadata(conversation_id: str) -> dict[str, Any]:
    return event(
        "conversation_initiation_metadata",
        {
            "conversation_id": conversation_id,
            "agent_output_audio_format": "pcm_16000",
            "user_input_audio_format": "pcm_16000",
        },
    )


def user_transcript(text: str) -> dict[str, Any]:
    return {"type": "user_transcript", "user_transcription_event": {"user_transcript": text}}


def agent_response(text: str, turn: dict[str, Any] | None = None) -> dict[str, Any]:
    """`turn`, on the last response of a turn, says what the turn did (outcome, proposal...): ElevenLabs
    clients ignore the extra field; `talk` and `replay --server` read it."""
    body: dict[str, Any] = {"agent_response": text}
    if turn is not None:
        body["turn"] = turn
    return event("agent_response", body)


def client_tool_call(tool_call_id: str, tool_name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "client_tool_call",
        "client_tool_call": {
            "tool_name": tool_name,
            "tool_call_id": tool_call_id,
            "parameters": parameters,
            "expects_response": True,
        },
    }


def ping(event_id: int) -> dict[str, Any]:
    return event("ping", {"event_id": event_id, "ping_ms": None})


def error(code: str, message: str) -> dict[str, Any]:
    return event("error", {"code": code, "message": message})
