"""What a server process holds about its live conversations: the session driver, the open WebSockets, the
turns in flight. A turn runs as its own task under `asyncio.shield`, so a client that disconnects (or a
handler that is cancelled) never cancels a payment half way: the turn finishes and its outcome is stored.

Under abuse: a session has one live socket (the database numbers each connection of a session, so the newest
wins on every process), a user holds at most `ws_max_sockets_per_user` of them, and a user's turns run a few
at a time (`turns_per_user`) with a bounded wait (`turns_waiting_per_user`, then `TurnsBusy`), so one user's
flood queues behind itself and leaves the database pool and the loop to everyone else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import WSCloseCode, web

from ledger.models import LedgerError
from voice_server.conversation.driver import SessionDriver, TurnResult
from voice_server.conversation.records import Keep
from voice_server.dialogue.events import UserEvent
from voice_server.metrics import Metrics

log = logging.getLogger("ongea_pesa.turns")

# The database cannot be reached or has no connection to spare: a 503 to try again, never a 500.
UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
)


class DatabaseUnavailable(Exception):
    """A turn could not reach the database; nothing was decided."""


class TurnsBusy(DatabaseUnavailable):
    """This user already has `turns_waiting_per_user` turns queued or running here: this one is refused
    before it starts (nothing was decided), so a flood sheds at its source."""


class ProfileMissing(Exception):
    """The session's user has no profile (deleted since the session was made): 403 `profile_missing`."""


class Abandoned(Exception):
    """A turn no longer wanted (its connection was replaced while it waited): nothing was done."""


# Close codes of a conversation WebSocket that the server ends (RFC 6455 leaves 4000-4999 to applications).
REPLACED = 4001  # a newer connection to the same session took over
TOO_MANY_SOCKETS = 4029  # the user already holds `ws_max_sockets_per_user` conversations open


@dataclass(eq=False)
class Socket:
    """One open conversation WebSocket: `generation` is the session's connection number in the database."""

    ws: web.WebSocketResponse
    session_id: str
    user_id: uuid.UUID
    generation: int


class UserTurns:
    """Per-user admission and concurrency of turns on this process."""

    def __init__(self, per_user: int, waiting: int) -> None:
        self.per_user, self.waiting = per_user, waiting
        self._count: dict[uuid.UUID, int] = {}
        self._slots: dict[uuid.UUID, asyncio.Semaphore] = {}

    def admit(self, user_id: uuid.UUID, *, force: bool = False) -> bool:
        count = self._count.get(user_id, 0)
        if count >= self.waiting and not force:
            return False
        self._count[user_id] = count + 1
        return True

    def slot(self, user_id: uuid.UUID) -> asyncio.Semaphore:
        return self._slots.setdefault(user_id, asyncio.Semaphore(self.per_user))

    def release(self, user_id: uuid.UUID) -> None:
        count = self._count.get(user_id, 0) - 1
        if count > 0:
            self._count[user_id] = count
        else:
            self._count.pop(user_id, None)
            self._slots.pop(user_id, None)

    def held(self, user_id: uuid.UUID) -> int:
        return self._count.get(user_id, 0)


def turn_kinds(result: TurnResult) -> list[str]:
    """The event kinds a turn produced, for the one log line per turn."""
    kinds = ["agent_response"] * len(result.say)
    kinds += [f"client_tool_call:{e.tool_name}" for e in result.client_events]
    return kinds


_CONNECT = """
    UPDATE voice_sessions SET ws_generation = ws_generation + 1
    WHERE session_id = $1 AND user_id = $2
    RETURNING ws_generation, EXISTS (SELECT 1 FROM profiles WHERE id = $2) AS has_profile
"""

_CHECK = """
    SELECT session_id, status, expires_at <= now() AS past_expiry, ws_generation
    FROM voice_sessions WHERE session_id = ANY($1::text[])
"""


@dataclass
class Live:
    driver: SessionDriver
    metrics: Metrics
    pool: asyncpg.Pool | None = None
    max_sockets_per_user: int = 5
    turns: UserTurns = field(default_factory=lambda: UserTurns(2, 16))
    accepting: bool = True
    sockets: dict[str, Socket] = field(default_factory=dict)
    in_flight: set[asyncio.Task[Any]] = field(default_factory=set)

    async def turn(
        self,
        channel: str,
        session_id: str,
        user_id: uuid.UUID,
        event: UserEvent | None,
        *,
        language: str | None = None,
        wanted: Callable[[], bool] | None = None,
        keep: Keep | None = None,
    ) -> TurnResult:
        """One driver turn (`event` None: the greeting, in `language` when given), shielded from the
        caller's cancellation, timed, counted and logged. A greeting is always admitted (one per
        connection, and the user's sockets are capped), and one whose `wanted()` is false by the time its
        user's slot is free is dropped (`Abandoned`): a connection replaced while it waited needs none.
        `keep`: the turn is kept in `voice_session_turns`, as part of the turn."""
        started = time.perf_counter()
        if not self.turns.admit(user_id, force=event is None):
            self.metrics.turns.labels(channel, "busy").inc()
            raise TurnsBusy("too many turns of this user waiting")
        task = asyncio.get_running_loop().create_task(
            self._run(session_id, user_id, event, language, wanted, keep)
        )
        task.add_done_callback(lambda _: self.turns.release(user_id))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        try:
            result = await asyncio.shield(task)
        except UNAVAILABLE as exc:
            self.metrics.turns.labels(channel, "unavailable").inc()
            raise DatabaseUnavailable(str(exc)) from exc
        except asyncio.CancelledError:
            log.info("turn session=%s input=%s continues after its caller left", session_id, _name(event))
            raise
        except (Abandoned, ProfileMissing):
            raise
        except Exception:
            self.metrics.turns.labels(channel, "refused").inc()
            raise
        elapsed = time.perf_counter() - started
        self.metrics.turns.labels(channel, result.outcome).inc()
        self.metrics.turn_latency.observe(elapsed)
        log.info(
            "turn session=%s channel=%s input=%s events=%s outcome=%s took=%.1fms",
            session_id,
            channel,
            _name(event),
            ",".join(turn_kinds(result)) or "-",
            result.outcome,
            elapsed * 1000,
        )
        return result

    async def _run(
        self,
        session_id: str,
        user_id: uuid.UUID,
        event: UserEvent | None,
        language: str | None,
        wanted: Callable[[], bool] | None,
        keep: Keep | None,
    ) -> TurnResult:
        async with self.turns.slot(user_id):
            if wanted is not None and not wanted():
                raise Abandoned()
            try:
                if event is None:
                    return await self.driver.greeting(session_id, user_id, language=language)
                return await self.driver.handle(session_id, user_id, event, keep=keep)
            except LedgerError as exc:
                if exc.code == "user_not_found":
                    raise ProfileMissing() from None
                raise

    async def connect(self, ws: web.WebSocketResponse, session_id: str, user_id: uuid.UUID) -> Socket | None:
        """Numbers this connection of the session in the database (the newest number is the live one on
        every process) and makes it the session's socket here, closing the one it replaces. None (and `ws`
        closed) when the user already holds `max_sockets_per_user` other sessions' sockets here, when the
        session is not this user's, or when a newer connection already took over."""
        if self._over_cap(session_id, user_id):
            await _close(ws, TOO_MANY_SOCKETS, "too many open conversations for this user")
            return None
        assert self.pool is not None
        async with self.turns.slot(user_id):  # a flood of connections holds at most the user's slots
            row = await self.pool.fetchrow(_CONNECT, session_id, user_id)
        if row is None:
            await _close(ws, WSCloseCode.POLICY_VIOLATION, "session not_found")
            return None
        if not row["has_profile"]:
            await _close(ws, WSCloseCode.POLICY_VIOLATION, "profile_missing")
            return None
        generation: int = row["ws_generation"]
        sock = Socket(ws, session_id, user_id, generation)
        current = self.sockets.get(session_id)
        if current is not None and current.generation > generation:
            await _close(ws, REPLACED, "replaced by a newer connection")
            return None
        if current is None and self._over_cap(session_id, user_id):
            await _close(ws, TOO_MANY_SOCKETS, "too many open conversations for this user")
            return None
        self.sockets[session_id] = sock
        if current is None:
            self.metrics.open_sessions.inc()
        else:
            await _close(current.ws, REPLACED, "replaced by a newer connection")
        return sock

    def _over_cap(self, session_id: str, user_id: uuid.UUID) -> bool:
        held = sum(1 for s in self.sockets.values() if s.user_id == user_id and s.session_id != session_id)
        return held >= self.max_sockets_per_user

    def disconnect(self, sock: Socket) -> None:
        if self.sockets.get(sock.session_id) is sock:
            del self.sockets[sock.session_id]
            self.metrics.open_sessions.dec()

    async def close_session_sockets(self, session_id: str, code: int, message: str) -> None:
        sock = self.sockets.get(session_id)
        if sock is not None:
            await _close(sock.ws, code, message)

    async def check_sessions(self) -> int:
        """Closes the sockets here whose session ended or expired, or that a newer connection (on any
        process) took over; how many it closed. One query for all of them."""
        if not self.sockets or self.pool is None:
            return 0
        open_now = dict(self.sockets)
        rows = await self.pool.fetch(_CHECK, list(open_now))
        found = {r["session_id"]: r for r in rows}
        closing: list[Awaitable[None]] = []
        for session_id, sock in open_now.items():
            row = found.get(session_id)
            if row is None or row["status"] == "ended":
                closing.append(_close(sock.ws, 1000, "session ended"))
            elif row["status"] != "active" or row["past_expiry"]:
                closing.append(_close(sock.ws, WSCloseCode.POLICY_VIOLATION, "session expired"))
            elif row["ws_generation"] > sock.generation:
                closing.append(_close(sock.ws, REPLACED, "replaced by a newer connection"))
        await asyncio.gather(*closing)
        return len(closing)

    async def watch_sessions(self, every: float) -> None:
        """`check_sessions` every `every` seconds, for the life of the app."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.check_sessions()
            except UNAVAILABLE:
                log.warning("session check skipped: database unavailable")
            except asyncpg.PostgresError:
                log.exception("session check failed")

    async def shut_down(self, *, grace: float = 30.0) -> None:
        """SIGTERM: no new sessions, the turns in flight finish, then every socket is closed with 1001.

        A turn that starts during the grace (a "yes" on a connection still open) is waited for too, within
        the same `grace`: its answer reaches the person before the close."""
        self.accepting = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self.in_flight:
            log.info("shutting down: waiting for %d turns in flight", len(self.in_flight))
        while self.in_flight and (left := deadline - loop.time()) > 0:
            await asyncio.wait(set(self.in_flight), timeout=left)
        sockets = [sock.ws for sock in self.sockets.values()]
        if sockets:
            log.info("shutting down: closing %d conversation WebSockets (1001)", len(sockets))
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down") for ws in sockets),
            return_exceptions=True,
        )


async def _close(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code=code, message=reason.encode()[:120])


def _name(event: UserEvent | None) -> str:
    return "greeting" if event is None else type(event).__name__


LIVE_KEY = web.AppKey("live", Live)
