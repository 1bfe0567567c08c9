"""`GET /v1/convai/conversation?conversation_signature=SESSION_TOKEN`: one conversation over a WebSocket.

A thin shell: it checks the session token, turns frames into driver events and turn results into events,
and guards the connection (64 KiB frames, 20 messages a second, pings that must be answered, one socket per
session, a bounded number of turns waiting per user). It decides nothing about money.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from voice_server.appkeys import POOL_KEY, SESSION_TOKENS_KEY, SETTINGS_KEY
from voice_server.conversation.driver import ClientEvent, SessionClosed, TurnResult
from voice_server.conversation.records import Keep
from voice_server.dialogue.events import PinEntry, Tap, Tick, UserEvent, Utterance
from voice_server.events_routes import FEED_KEY
from voice_server.receipts import watch_settlements
from voice_server.session_tokens import SessionClaims, SessionTokenError
from voice_server.ws import protocol
from voice_server.ws.live import (
    LIVE_KEY,
    UNAVAILABLE,
    Abandoned,
    DatabaseUnavailable,
    Live,
    ProfileMissing,
    Socket,
    TurnsBusy,
)

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
RATE_PER_SECOND = 20.0
RATE_BURST = 40.0
FIRST_MESSAGE_WAIT = 1.0
MAX_QUEUED_TURNS = 32
MAX_REMEMBERED_CALLS = 64
KEEP_WS = Keep("ws")  # every turn of the WebSocket (but the greeting) is kept

_LAST_OUTCOME = """
    SELECT t.id, t.status, p.wallet_balance, coalesce(t.mpesa_transaction_id, '') AS reference
    FROM transactions t JOIN profiles p ON p.id = t.user_id
    WHERE t.session_id = $1 AND t.user_id = $2 AND t.status IN ('processing', 'completed', 'failed')
    ORDER BY t.confirmed_at DESC NULLS LAST, t.created_at DESC
    LIMIT 1
"""


class RateLimiter:
    """A token bucket: bursts of `burst` messages, `rate` a second sustained."""

    def __init__(self, rate: float = RATE_PER_SECOND, burst: float = RATE_BURST) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


def turn_summary(result: TurnResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "proposal": result.proposal,
        "asked": result.asked,
        "rejected": result.rejected,
        "committed": result.committed,
        "balance": result.balance,
        "language": result.language,
        "cancelled": result.cancelled,
    }


class Connection:
    def __init__(
        self, ws: web.WebSocketResponse, live: Live, pool: asyncpg.Pool, claims: SessionClaims, ping: float
    ) -> None:
        self.ws = ws
        self.live = live
        self.pool = pool
        self.session_id = claims.session_id
        self.user_id = claims.user_id
        self.ping_interval = ping
        self.limiter = RateLimiter()
        self.queue: asyncio.Queue[UserEvent | None] = asyncio.Queue(MAX_QUEUED_TURNS)
        self.calls: OrderedDict[str, ClientEvent] = OrderedDict()
        # The id of the ping still unanswered: random, so only a client that read the ping can answer it.
        self.awaiting_pong: int | None = None

    async def send(self, obj: dict[str, Any]) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(_json(obj))

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=reason.encode()[:120])

    async def run(self) -> None:
        first, language = await self._first_frame()
        try:
            sock = await self.live.connect(self.ws, self.session_id, self.user_id)
        except UNAVAILABLE:
            await self.close(WSCloseCode.TRY_AGAIN_LATER, "busy; try again")
            return
        if sock is None:
            return
        try:
            await self._converse(sock, first, language)
        finally:
            self.live.disconnect(sock)

    async def _converse(self, sock: Socket, first: WSMessage | None, language: str | None) -> None:
        try:
            greeting = await self.live.turn(
                "ws", self.session_id, self.user_id, None, language=language, wanted=self._open
            )
        except Abandoned:
            return
        except ProfileMissing:
            await self.close(WSCloseCode.POLICY_VIOLATION, "profile_missing")
            return
        except SessionClosed as exc:
            await self.close(WSCloseCode.POLICY_VIOLATION, f"session {exc.code}")
            return
        except DatabaseUnavailable:
            await self.close(WSCloseCode.TRY_AGAIN_LATER, "busy; try again")
            return
        if self.ws.closed:  # replaced (or ended) while the greeting was made
            return
        pinger = asyncio.get_running_loop().create_task(self._pinger())
        worker = asyncio.get_running_loop().create_task(self._worker())
        try:
            await self.send(protocol.initiation_metadata(self.session_id))
            await self._send_turn(greeting)
            with contextlib.suppress(*UNAVAILABLE):
                await self._send_last_outcome()
            if first is not None and not await self._frame(first):
                return
            async for msg in self.ws:
                if not await self._frame(msg):
                    break
        finally:
            pinger.cancel()
            # What the person already sent (a tap on Confirm, a "yes") is still carried out after a
            # disconnect; its outcome is shown on the next connection or in the history.
            try:
                self.queue.put_nowait(None)
            except asyncio.QueueFull:
                worker.cancel()
            await asyncio.gather(pinger, worker, return_exceptions=True)

    def _open(self) -> bool:
        return not self.ws.closed

    async def _first_frame(self) -> tuple[WSMessage | None, str | None]:
        """The SDKs send `conversation_initiation_client_data` first (its `dynamic_variables.language`, en or
        sw, is the language the greeting is said in); a client that does not is not kept waiting long. The
        frame when it is something else, to be handled as any other."""
        try:
            msg = await self.ws.receive(timeout=FIRST_MESSAGE_WAIT)
        except TimeoutError:
            return None, None
        if msg.type == WSMsgType.TEXT:
            with contextlib.suppress(protocol.ProtocolError):
                message = protocol.parse_client(msg.data)
                if isinstance(message, protocol.Initiation):
                    return None, message.language
        return msg, None

    async def _frame(self, msg: WSMessage) -> bool:
        """Handles one frame; False when the connection is over."""
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return False
        if msg.type == WSMsgType.ERROR:
            # aiohttp has already closed the connection (1009 for a frame over max_msg_size).
            return False
        if not self.limiter.allow():
            await self.close(WSCloseCode.POLICY_VIOLATION, "too many messages")
            return False
        if msg.type != WSMsgType.TEXT:
            await self.send(protocol.error("unsupported", "send JSON text frames"))
            return True
        try:
            message = protocol.parse_client(msg.data)
        except protocol.ProtocolError as exc:
            await self.send(protocol.error(exc.code, exc.message))
            return True
        if isinstance(message, protocol.Pong):
            if message.event_id == self.awaiting_pong:  # any other pong answers nothing we asked
                self.awaiting_pong = None
        elif isinstance(message, protocol.UserMessage):
            await self.send(protocol.user_transcript(message.text))
            await self._enqueue(Utterance(text=message.text))
        elif isinstance(message, protocol.ToolResult):
            await self._tool_result(message)
        return True

    async def _enqueue(self, event: UserEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            await self.send(protocol.error("busy", "too many turns waiting; wait for the answer"))

    async def _tool_result(self, message: protocol.ToolResult) -> None:
        call = self.calls.get(message.tool_call_id)
        if call is None:
            await self.send(protocol.error("unknown_tool_call", "no such tool call on this connection"))
            return
        if message.is_error:
            return
        answer = message.result.strip()
        if call.tool_name == "show_proposal" and answer.lower() in ("confirm", "cancel"):
            del self.calls[message.tool_call_id]  # one tap per card
            try:
                proposal_id = uuid.UUID(str(call.parameters.get("proposal_id")))
            except ValueError:
                return
            version = call.parameters.get("version")
            await self._enqueue(
                Tap(
                    action="confirm" if answer.lower() == "confirm" else "cancel",
                    proposal_id=proposal_id,
                    version=version if isinstance(version, int) else None,
                )
            )
        elif call.tool_name == "request_pin" or (
            call.tool_name == "show_proposal" and answer.isdigit() and 4 <= len(answer) <= 6
        ):
            # The keypad's digits (an app may also offer the keypad on the card itself, before being asked).
            if call.tool_name == "request_pin":
                del self.calls[message.tool_call_id]
            await self._enqueue(PinEntry(digits=answer))
        # Anything else (the SDK's own "called successfully") changes nothing.

    async def _worker(self) -> None:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            try:
                result = await self.live.turn("ws", self.session_id, self.user_id, event, keep=KEEP_WS)
            except SessionClosed as exc:
                await self.send(protocol.error(f"session_{exc.code}", "this voice session is over"))
                await self.close(WSCloseCode.POLICY_VIOLATION, f"session {exc.code}")
                return
            except asyncio.CancelledError:
                raise
            except TurnsBusy:
                await self.send(protocol.error("busy", "too many turns waiting; wait for the answer"))
                continue
            except ProfileMissing:
                await self.close(WSCloseCode.POLICY_VIOLATION, "profile_missing")
                return
            except DatabaseUnavailable:
                await self.send(protocol.error("unavailable", "the service is busy; please say it again"))
                continue
            except Exception:
                log.exception("turn failed on session %s", self.session_id)
                await self.send(protocol.error("internal_error", "that did not work; please say it again"))
                continue
            if isinstance(event, Tick) and not result.say and not result.client_events:
                continue  # a payout settled whose receipt another turn has told: nothing to send
            # Kept before it is shown, by the turn itself (SIGTERM waits for it); then sent at once.
            await self._send_turn(result)

    async def _send_turn(self, result: TurnResult) -> None:
        says = list(result.say)
        for say in says[:-1]:
            await self.send(protocol.agent_response(say.text))
        for client_event in result.client_events:
            call_id = f"{client_event.tool_name}_{uuid.uuid4().hex[:16]}"
            self.calls[call_id] = client_event
            while len(self.calls) > MAX_REMEMBERED_CALLS:
                self.calls.popitem(last=False)
            await self.send(
                protocol.client_tool_call(call_id, client_event.tool_name, client_event.parameters)
            )
        await self.send(protocol.agent_response(says[-1].text if says else "", turn_summary(result)))

    async def _send_last_outcome(self) -> None:
        """A new connection to a session whose payment went through (maybe while nobody was connected)
        sees its receipt."""
        row = await self.pool.fetchrow(_LAST_OUTCOME, self.session_id, self.user_id)
        if row is None:
            return
        receipt = ClientEvent(
            tool_name="show_receipt",
            parameters={
                "transaction_id": str(row["id"]),
                "status": row["status"],
                "balance": f"{row['wallet_balance']:.2f}",
                "reference": row["reference"],  # M-Pesa's receipt code once it has paid
            },
        )
        call_id = f"show_receipt_{uuid.uuid4().hex[:16]}"
        self.calls[call_id] = receipt
        await self.send(protocol.client_tool_call(call_id, receipt.tool_name, receipt.parameters))

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if self.awaiting_pong is not None:
                await self.close(WSCloseCode.POLICY_VIOLATION, "no pong")
                return
            self.awaiting_pong = secrets.randbelow(2**31 - 1) + 1
            await self.send(protocol.ping(self.awaiting_pong))


async def conversation_ws(request: web.Request) -> web.StreamResponse:
    live = request.app[LIVE_KEY]
    settings = request.app[SETTINGS_KEY]
    # No permessage-deflate: frames are small JSON, and a zlib stream costs ~100 KiB per idle connection.
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, compress=False)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(reason="WebSocket Expected")
    await ws.prepare(request)
    if not live.accepting:
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        return ws
    token = request.query.get("conversation_signature", "")
    try:
        claims = request.app[SESSION_TOKENS_KEY].verify(token)
    except SessionTokenError:
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"invalid session token")
        return ws
    connection = Connection(ws, live, request.app[POOL_KEY], claims, settings.ws_ping_interval_seconds)
    unwatch = watch_settlements(request.app[FEED_KEY], claims.user_id, connection.queue)
    # A session for a business wallet (sql/0028): its payouts and approvals are the wallet's events, and the
    # member's receipts among them are told live too.
    with contextlib.suppress(*UNAVAILABLE, asyncpg.PostgresError):
        wallet = await request.app[POOL_KEY].fetchval(
            "SELECT wallet_id FROM voice_sessions WHERE session_id = $1", claims.session_id
        )
        if wallet is not None:
            unwatch_wallet = watch_settlements(request.app[FEED_KEY], wallet, connection.queue)
            unwatch = _both(unwatch, unwatch_wallet)
    try:
        await connection.run()
    finally:
        unwatch()
    if not ws.closed:
        await ws.close()
    return ws


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def stop() -> None:
        first()
        second()

    return stop
