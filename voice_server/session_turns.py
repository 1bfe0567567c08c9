"""Every turn of a voice session, kept server-side (`voice_session_turns`, sql/0024): written by the turn
itself (`voice_server.conversation.records`), read back under row level security by
`GET /v1/sessions/{id}/transcript`.

A page reloaded mid-conversation shows these rather than what it remembered, so what it shows is what the
server heard and did. A PIN is stored as a marker only; its digits never reach this table or the answer.
The rows hold enough (heard, confidence, answers, proposal, outcome, committed) to write a replay transcript.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field

from ledger.reads import as_user
from voice_server.appkeys import POOL_KEY, SESSION_TOKENS_KEY
from voice_server.auth import bearer_token, request_user
from voice_server.http_errors import ApiError
from voice_server.session_tokens import SessionTokenError

log = logging.getLogger(__name__)

_READ = """
    SELECT t.seq, t.at, t.input_kind, t.heard, t.asr_confidence, t.tap, t.answered, t.tool_calls,
           t.proposal, t.outcome, t.asked, t.rejected, t.committed,
           t.balance, t.language, t.channel, t.tool_name, t.tool_parameters, t.cancelled
    FROM voice_session_turns t JOIN voice_sessions s ON s.id = t.voice_session_id
    WHERE s.session_id = $1
    ORDER BY t.seq
"""


class TurnRecord(BaseModel):
    seq: int
    at: datetime
    input: Literal["utterance", "tap", "pin", "tool", "receipt"] = Field(
        description="what the person did (a tool: what the agent called; a receipt: a payout settled)"
    )
    channel: Literal["ws", "tools"] = Field(description="over the WebSocket or the agent's tools")
    tool: str | None = Field(description="the agent tool called, for a turn over the tools")
    tool_parameters: dict[str, Any] | None = Field(description="what the agent passed (never a PIN)")
    heard: str | None = Field(description="what was heard (an utterance); null for a tap or a PIN")
    asr_confidence: str | None = Field(description="the recogniser's confidence, 0 to 1, when it gave one")
    tap: Literal["confirm", "cancel"] | None
    pin_entered: bool = Field(description="a PIN was typed in this turn (its digits are never kept)")
    answered: list[str] = Field(description="what the assistant said, in order")
    tool_calls: list[dict[str, Any]] = Field(description="the client tools the turn called (card, keypad...)")
    proposal: dict[str, Any] | None = Field(description="the proposal open after the turn")
    outcome: str
    asked: str | None
    cancelled: bool = Field(description="a proposal or a half-filled request was dropped in this turn")
    rejected: str | None
    committed: dict[str, Any] | None
    balance: str | None
    language: Literal["en", "sw"]


class SessionTranscript(BaseModel):
    session_id: str
    turns: list[TurnRecord]


def _record(row: asyncpg.Record) -> TurnRecord:
    return TurnRecord(
        seq=row["seq"],
        at=row["at"],
        input=row["input_kind"],
        channel=row["channel"],
        tool=row["tool_name"],
        tool_parameters=row["tool_parameters"],
        cancelled=row["cancelled"],
        heard=row["heard"],
        asr_confidence=None if row["asr_confidence"] is None else str(row["asr_confidence"]),
        tap=row["tap"],
        pin_entered=row["input_kind"] == "pin",
        answered=list(row["answered"]),
        tool_calls=row["tool_calls"],
        proposal=row["proposal"],
        outcome=row["outcome"],
        asked=row["asked"],
        rejected=row["rejected"],
        committed=row["committed"],
        balance=None if row["balance"] is None else f"{row['balance']:.2f}",
        language=row["language"],
    )


def _reader(request: web.Request, session_id: str) -> uuid.UUID:
    """The session's own session token, or a user token (row level security then shows only the user's
    own sessions); 401 for anything else."""
    token = bearer_token(request)
    if token is not None:
        try:
            claims = request.app[SESSION_TOKENS_KEY].verify(token)
        except SessionTokenError:
            pass
        else:
            if claims.session_id != session_id:
                raise ApiError(403, "session_forbidden", "that session token is for another session")
            return claims.user_id
    return request_user(request)


async def session_transcript(request: web.Request) -> web.Response:
    """`GET /v1/sessions/{session_id}/transcript`: this session's turns, oldest first."""
    session_id = request.match_info["session_id"][:200]
    user_id = _reader(request, session_id)
    async with as_user(request.app[POOL_KEY], user_id) as conn:
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM voice_sessions WHERE session_id = $1)", session_id
        ):
            raise ApiError(404, "session_not_found", "no such voice session")
        rows = await conn.fetch(_READ, session_id)
    body = SessionTranscript(session_id=session_id, turns=[_record(r) for r in rows])
    return web.json_response(text=body.model_dump_json())


async def delete_expired_turns(pool: asyncpg.Pool, retention_days: float) -> int:
    """The sweeper's: turns older than the retention go, and with them what was kept beside them (the
    session's opening state, the post-call webhook's transcript). Returns the turns removed."""
    seconds = retention_days * 86400.0
    status: str = await pool.execute(
        "DELETE FROM voice_session_turns WHERE at < now() - make_interval(secs => $1)", seconds
    )
    await pool.execute(
        "DELETE FROM voice_session_openings WHERE at < now() - make_interval(secs => $1)", seconds
    )
    await pool.execute(
        "DELETE FROM voice_session_transcripts WHERE received_at < now() - make_interval(secs => $1)",
        seconds,
    )
    return int(status.split()[-1])


def setup_session_turns(app: web.Application) -> None:
    app.router.add_get("/v1/sessions/{session_id}/transcript", session_transcript)
