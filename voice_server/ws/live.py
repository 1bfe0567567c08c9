"""What a server process holds about its live conversations: the session driver, the open WebSockets, the
turns in flight. A turn runs as its own task under `asyncio.shield`, so a client that disconnects (or a
handler that is cancelled) never cancels a payment half way: the turn finishes and its outcome is stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import WSCloseCode, web

from voice_server.conversation.driver import SessionDriver, TurnResult
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


def turn_kinds(result: TurnResult) -> list[str]:
    """The event kinds a turn produced, for the one log line per turn."""
    kinds = ["agent_response"] * len(result.say)
    kinds += [f"client_tool_call:{e.tool_name}" for e in result.client_events]
    return kinds


@dataclass
class Live:
    driver: SessionDriver
    metrics: Metrics
    accepting: bool = True
    sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=lambda: defaultdict(set))
    in_flight: set[asyncio.Task[Any]] = field(default_factory=set)

    async def turn(
        self,
        channel: str,
        session_id: str,
        user_id: uuid.UUID,
        event: UserEvent | None,
        *,
        language: str | None = None,
    ) -> TurnResult:
        """One driver turn (`event` None: the greeting, in `language` when given), shielded from the
        caller's cancellation, timed, counted and logged."""
        started = time.perf_counter()
        task = asyncio.get_running_loop().create_task(self._run(session_id, user_id, event, language))
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
        self, session_id: str, user_id: uuid.UUID, event: UserEvent | None, language: str | None
    ) -> TurnResult:
        if event is None:
            return await self.driver.greeting(session_id, user_id, language=language)
        return await self.driver.handle(session_id, user_id, event)

    def add_socket(self, session_id: str, ws: web.WebSocketResponse) -> None:
        self.sockets[session_id].add(ws)
        self.metrics.open_sessions.inc()

    def remove_socket(self, session_id: str, ws: web.WebSocketResponse) -> None:
        group = self.sockets.get(session_id)
        if group is not None and ws in group:
            group.discard(ws)
            self.metrics.open_sessions.dec()
            if not group:
                del self.sockets[session_id]

    async def close_session_sockets(self, session_id: str, code: int, message: str) -> None:
        for ws in list(self.sockets.get(session_id, ())):
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=message.encode())

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
        sockets = [ws for group in self.sockets.values() for ws in group]
        if sockets:
            log.info("shutting down: closing %d conversation WebSockets (1001)", len(sockets))
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down") for ws in sockets),
            return_exceptions=True,
        )


def _name(event: UserEvent | None) -> str:
    return "greeting" if event is None else type(event).__name__


LIVE_KEY = web.AppKey("live", Live)
