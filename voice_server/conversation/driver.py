"""The session driver: one turn of a voice conversation, at the I/O edge.

Loads and locks the `voice_sessions` row, feeds the event to the pure dialogue, carries out its actions
against the ledger (and feeds the answers back), stores the new dialogue state and returns what to say and
send. Money is decided here and in the ledger only; the network layers translate to and from these calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import asyncpg

from voice_server.dialogue.events import UserEvent
from voice_server.settings import Settings

Language = Literal["en", "sw"]
Clock = Callable[[], datetime]


ClosedCode = Literal["not_found", "expired", "ended", "forbidden"]


class SessionClosed(Exception):
    """The session cannot take this event: `not_found`, `expired`, `ended` or `forbidden` (another user's)."""

    def __init__(self, code: ClosedCode, message: str = "") -> None:
        super().__init__(message or code)
        self.code: ClosedCode = code


@dataclass(frozen=True)
class Say:
    text: str
    language: Language


@dataclass(frozen=True)
class ClientEvent:
    """One `client_tool_call` the app shows; `parameters` are JSON-ready (amounts as "1500.00" strings)."""

    tool_name: Literal["show_proposal", "request_pin", "show_receipt", "balance_update"]
    parameters: dict[str, object]


@dataclass(frozen=True)
class TurnResult:
    say: list[Say]
    client_events: list[ClientEvent]
    outcome: str  # proposed | asked | committed | cancelled | rejected | answered | ended | ignored
    proposal: dict[str, object] | None
    asked: str | None = None
    rejected: str | None = None
    committed: dict[str, object] | None = None
    balance: str | None = None
    language: Language = "en"
    cancelled: bool = False  # a proposal (or a half-filled request) was dropped in this turn


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    agent_id: str = "ongea-pesa"
    language: Language = "en"
    extra: dict[str, object] = field(default_factory=dict)


class SessionDriver:
    """Runs turns of voice sessions; safe to share between connections and processes (the row lock
    serialises each session's events)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, *, clock: Clock | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self._clock = clock

    async def start_session(
        self,
        user_id: uuid.UUID,
        *,
        agent_id: str = "ongea-pesa",
        language: str | None = None,
        signed_url: str | None = None,
    ) -> SessionInfo:
        raise NotImplementedError

    async def greeting(self, session_id: str, user_id: uuid.UUID) -> TurnResult:
        raise NotImplementedError

    async def handle(self, session_id: str, user_id: uuid.UUID, event: UserEvent) -> TurnResult:
        raise NotImplementedError

    async def end_session(
        self, session_id: str, user_id: uuid.UUID, status: Literal["ended", "expired"] = "ended"
    ) -> None:
        raise NotImplementedError
