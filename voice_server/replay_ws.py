"""`ongea-pesa replay --server URL`: transcripts replayed against a running server over its conversation
WebSocket, the way the app talks to it. Users are made on the server's database (`--database-url`, or the
same embedded defaults as `serve`) and get user tokens signed with the server's JWT secret; the final state is
read from that database after the server's own payout worker settled.

A running server's clock cannot be moved and its M-Pesa simulator cannot be told to fail, so transcripts with
`wait:` turns or a non-success `gateway:` are reported as skipped (SKIP), not run.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import websockets

from voice_server.auth import mint_user_token
from voice_server.conversation.replay import (
    Report,
    committed_count,
    final_state,
    prepare_user,
    replay_files,
)
from voice_server.conversation.transcripts import Observed, Transcript, check_final, check_turn
from voice_server.runtime import database
from voice_server.settings import Settings

TURN_WAIT = 15.0
SETTLE_WAIT = 60.0


@dataclass
class SkippedReport(Report):
    def line(self) -> str:
        return f"SKIP  {self.name} ({self.path}): {self.error}"


def skip_reason(transcript: Transcript) -> str | None:
    if any(turn.wait is not None for turn in transcript.turns):
        return "has wait: turns (a running server's clock cannot be moved)"
    if any(turn.tool is not None for turn in transcript.turns):
        return "has tool: turns (replayed locally, through the same driver as the tools route)"
    if transcript.gateway.result != "success":
        return f"gateway: {transcript.gateway.result} (a running server's M-Pesa cannot be told to fail)"
    return None


class ServerReplayer:
    """Implements `voice_server.conversation.replay.Replayer` over a running server's WebSocket."""

    def __init__(self, server_url: str, pool: asyncpg.Pool, settings: Settings) -> None:
        self.server = server_url.rstrip("/")
        self.pool = pool
        self.settings = settings

    async def run(self, transcript: Transcript, path: str) -> Report:
        started = time.perf_counter()
        reason = skip_reason(transcript)
        if reason is not None:
            return SkippedReport(path, transcript.name, ok=True, error=reason, details={"skipped": True})
        user_id = await prepare_user(self.pool, transcript)
        token = mint_user_token(self.settings.user_jwt_secret(), user_id, ttl_seconds=3600)
        report = Report(path, transcript.name, ok=True)
        async with aiohttp.ClientSession() as http:
            body = {"language": transcript.user.language} if transcript.user.language else {}
            async with http.post(
                f"{self.server}/v1/sessions", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as r:
                if r.status != 201:
                    report.ok, report.error = (
                        False,
                        f"POST /v1/sessions answered {r.status}: {await r.text()}",
                    )
                    return report
                session = await r.json()
        async with websockets.connect(session["ws_url"], max_size=None) as ws:
            conv = _Conversation(ws)
            await conv.send({"type": "conversation_initiation_client_data", "dynamic_variables": {}})
            await conv.turn(None)
            for number, turn in enumerate(transcript.turns, start=1):
                before = await committed_count(self.pool, user_id)
                frame = conv.frame_for(turn.user, turn.tap, turn.pin)
                seen = await conv.turn(frame)
                seen.newly_committed = await committed_count(self.pool, user_id) - before
                problem = check_turn(turn.expect, seen)
                if problem is not None:
                    report.ok, report.turn = False, number
                    report.error = f"turn {number} ({turn.describe()}): {problem}"
                    break
        if report.ok:
            await self._settled(user_id)
            balance, transactions = await final_state(self.pool, user_id)
            problem = check_final(transcript.final, balance, transactions)
            if problem is not None:
                report.ok, report.error = False, f"final: {problem}"
        report.seconds = time.perf_counter() - started
        return report

    async def _settled(self, user_id: uuid.UUID) -> None:
        deadline = time.monotonic() + SETTLE_WAIT
        while time.monotonic() < deadline:
            waiting = await self.pool.fetchval(
                "SELECT count(*) FROM transactions WHERE user_id = $1 AND status = 'processing'", user_id
            )
            if not waiting:
                return
            await asyncio.sleep(0.2)


class _Conversation:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.card: str | None = None
        self.pin_call: str | None = None

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(obj))

    def frame_for(self, user: str | None, tap: str | None, pin: str | None) -> dict[str, Any]:
        if user is not None:
            return {"type": "user_message", "text": user}
        call = self.card if tap is not None else (self.pin_call or self.card)
        if tap is None:
            self.pin_call = None
        return {
            "type": "client_tool_result",
            "tool_call_id": call or "none-shown",
            "result": tap if tap is not None else (pin or ""),
            "is_error": False,
        }

    async def turn(self, frame: dict[str, Any] | None) -> Observed:
        """Sends one frame and reads the events up to the end of its turn."""
        if frame is not None:
            await self.send(frame)
        said: list[str] = []
        try:
            while True:
                event = json.loads(await asyncio.wait_for(self.ws.recv(), TURN_WAIT))
                kind = event.get("type")
                if kind == "ping":
                    await self.send({"type": "pong", "event_id": event["ping_event"]["event_id"]})
                elif kind == "client_tool_call":
                    call = event["client_tool_call"]
                    if call["tool_name"] == "show_proposal":
                        self.card = call["tool_call_id"]
                    elif call["tool_name"] == "request_pin":
                        self.pin_call = call["tool_call_id"]
                elif kind == "error":
                    return Observed(
                        say=said, outcome="error", language="en", rejected=event["error_event"]["code"]
                    )
                elif kind == "agent_response":
                    body = event["agent_response_event"]
                    if body.get("agent_response"):
                        said.append(body["agent_response"])
                    if "turn" in body:
                        return _observed(said, body["turn"])
        except TimeoutError:
            return Observed(say=said, outcome="no_answer", language="en", rejected="no_answer")
        except websockets.ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd else ""
            code = reason.removeprefix("session ") if reason.startswith("session ") else "closed"
            return Observed(say=said, outcome="ended", language="en", rejected=code)


def _observed(said: list[str], turn: dict[str, Any]) -> Observed:
    outcome = str(turn.get("outcome"))
    return Observed(
        say=said,
        outcome=outcome,
        language=str(turn.get("language") or "en"),
        proposed=turn.get("proposal") if outcome == "proposed" else None,
        asked=turn.get("asked"),
        committed=turn.get("committed"),
        cancelled=bool(turn.get("cancelled")),
        rejected=turn.get("rejected"),
        balance=turn.get("balance"),
    )


async def replay_server(paths: list[str], server_url: str, settings: Settings) -> list[Report]:
    async with database(settings, max_size=4) as pool:
        return await replay_files(paths, ServerReplayer(server_url, pool, settings))
