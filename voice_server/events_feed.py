"""The live feed's engine: one LISTEN connection per server process, fed by the triggers of
`sql/0023_plans.sql` (so a change made by any process reaches every server), handing each user's events to
that user's streams and conversations only.

Events are read from `app_events` in (xid, id) order, and only those whose writing transaction is below the
horizon (the oldest transaction of this database still in progress): every transaction that could still add
an earlier row has ended, so a position (xid, id) once passed is never followed by a row before it.
One reader per process reads every user's new events (one query for all streams); a stream that resumes
(`Last-Event-ID`) reads its own back from the table first. A stream that cannot keep up is closed, and its
client resumes from its last id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

log = logging.getLogger(__name__)

Position = tuple[int, int]  # (xid, id)
ORIGIN: Position = (0, 0)
# Positions are two unsigned 63-bit numbers; anything else is not one of ours.
_POSITION = re.compile(r"^(\d{1,19})-(\d{1,19})$")
_MAX = 2**63 - 1
PAGE = 1000
QUEUE_LIMIT = 2000

# The horizon: the oldest transaction of THIS database still in progress (or the next xid when none is), so
# a long transaction in another database on the same server holds nothing back. A transaction is matched by
# its backend's xid (pg_stat_activity reads the same field the snapshot does, set at the same moment). It was
# matched by its transactionid lock in pg_locks, which a new xid takes a moment after snapshots see it: a
# horizon read in that moment passed over it, and the events it then wrote were never streamed. The
# statement's snapshot is taken before the activity is read; a transaction that ends between the two is seen
# by the rows' statement, read after this one.
_HORIZON = """
    WITH snap AS (SELECT pg_current_snapshot() AS s)
    SELECT coalesce((SELECT min(x) FROM snap, pg_snapshot_xip(snap.s) AS x
                     WHERE xid(x) IN (SELECT a.backend_xid FROM pg_stat_activity a
                                      WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL)),
                    (SELECT pg_snapshot_xmax(s) FROM snap))::text
"""
_FINAL = """
    SELECT xid::text AS xid, id, user_id, source, op, row_id, data::text AS data, created_at
    FROM app_events
    WHERE (xid, id) > ($1::text::xid8, $2::bigint) AND xid < $4::text::xid8
    ORDER BY xid, id
    LIMIT $3
"""
_FINAL_OF_USER = """
    SELECT xid::text AS xid, id, user_id, source, op, row_id, data::text AS data, created_at
    FROM app_events
    WHERE user_id = $5
      AND (xid, id) > ($1::text::xid8, $2::bigint) AND xid < $4::text::xid8
    ORDER BY xid, id
    LIMIT $3
"""
# Rows already written past the position whose transaction is not yet below the horizon (a reader waits).
_WAITING = """
    SELECT EXISTS (SELECT 1 FROM app_events
                   WHERE (xid, id) > ($1::text::xid8, $2::bigint) AND xid >= $3::text::xid8)
"""
_LAST_FINAL = """
    SELECT xid::text AS xid, id FROM app_events
    WHERE xid < $1::text::xid8
    ORDER BY xid DESC, id DESC LIMIT 1
"""
_PRUNED = "SELECT xid::text AS xid, id FROM app_events_pruned"


def format_position(position: Position) -> str:
    return f"{position[0]}-{position[1]}"


def parse_position(text: str) -> Position:
    """A `Last-Event-ID` as we wrote it; ValueError for anything else (huge, negative, foreign)."""
    match = _POSITION.match(text.strip())
    if match is None:
        raise ValueError("not an event id")
    xid, ident = int(match.group(1)), int(match.group(2))
    if xid > _MAX or ident > _MAX:
        raise ValueError("not an event id")
    return xid, ident


@dataclass(frozen=True)
class AppEvent:
    position: Position
    user_id: uuid.UUID
    source: str
    op: str
    row_id: uuid.UUID
    data: str  # JSON text, as the trigger built it
    created_at: datetime

    @property
    def payload(self) -> dict[str, object]:
        return dict(json.loads(self.data))

    def sse(self) -> bytes:
        body = json.dumps(
            {"op": self.op, "id": str(self.row_id), "row": json.loads(self.data)}, separators=(",", ":")
        )
        return f"id: {format_position(self.position)}\nevent: {self.source}\ndata: {body}\n\n".encode()


def _event(row: asyncpg.Record) -> AppEvent:
    return AppEvent(
        (int(row["xid"]), int(row["id"])),
        row["user_id"],
        row["source"],
        row["op"],
        row["row_id"],
        row["data"],
        row["created_at"],
    )


async def read_user_events(
    pool: asyncpg.Pool, user_id: uuid.UUID, after: Position, limit: int = PAGE
) -> list[AppEvent]:
    """The user's final events after `after`, oldest first (a resumed stream's catch-up)."""
    horizon = await pool.fetchval(_HORIZON)
    rows = await pool.fetch(_FINAL_OF_USER, str(after[0]), after[1], limit, horizon, user_id)
    return [_event(r) for r in rows]


@dataclass(eq=False)
class Subscription:
    """One stream's (or conversation's) view of the feed: the user's live events, in order."""

    user_id: uuid.UUID
    queue: asyncio.Queue[AppEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False
    on_event: Callable[[AppEvent], None] | None = None

    def deliver(self, event: AppEvent | None) -> None:
        if self.on_event is not None:
            if event is not None:
                self.on_event(event)
            return
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream ends; its client resumes from its last id
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class EventFeed:
    """The process's reader: LISTEN `app_events`, read what became final, hand it to the user's streams."""

    def __init__(self, pool: asyncpg.Pool, *, safety_poll: float = 2.0) -> None:
        self.pool = pool
        self.position: Position = ORIGIN
        self.subscribers: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self.safety_poll = safety_poll
        self.closing = False
        self.ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- subscribers -------------------------------------------------------------------------------------

    def subscribe(
        self, user_id: uuid.UUID, on_event: Callable[[AppEvent], None] | None = None
    ) -> Subscription:
        sub = Subscription(user_id, on_event=on_event)
        self.subscribers[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        group = self.subscribers.get(sub.user_id)
        if group is not None:
            group.discard(sub)
            if not group:
                del self.subscribers[sub.user_id]

    async def last_final(self) -> Position:
        row = await self.pool.fetchrow(_LAST_FINAL, await self.pool.fetchval(_HORIZON))
        return ORIGIN if row is None else (int(row["xid"]), int(row["id"]))

    async def pruned(self) -> Position | None:
        """The highest position retention removed (sql/0023, app_events_prune), if any."""
        row = await self.pool.fetchrow(_PRUNED)
        return None if row is None else (int(row["xid"]), int(row["id"]))

    # --- the reader --------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="events-feed")

    async def stop(self) -> None:
        self.closing = True
        for group in list(self.subscribers.values()):
            for sub in list(group):
                sub.deliver(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, *_args: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                async with self._listening() as conn:
                    if not self.ready.is_set():
                        row = await conn.fetchrow(_LAST_FINAL, await conn.fetchval(_HORIZON))
                        self.position = ORIGIN if row is None else (int(row["xid"]), int(row["id"]))
                        self.ready.set()
                    await self._follow(conn)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                log.warning("events feed: database connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def _listening(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener("app_events", self._notified)
            try:
                yield conn
            finally:
                with contextlib.suppress(Exception):
                    await conn.remove_listener("app_events", self._notified)

    async def _follow(self, conn: asyncpg.Connection) -> None:
        pause = 0.0
        while True:
            self._wake.clear()
            horizon = await conn.fetchval(_HORIZON)
            got = await self._read(conn, horizon)
            if got == PAGE:
                continue
            if got:
                pause = 0.0
            if await conn.fetchval(_WAITING, str(self.position[0]), self.position[1], horizon):
                # Written but not yet final (an older transaction is still open): look again shortly.
                pause = min(0.05, pause * 2 or 0.002)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)
                continue
            pause = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.safety_poll)

    async def _read(self, conn: asyncpg.Connection, horizon: str) -> int:
        rows = await conn.fetch(_FINAL, str(self.position[0]), self.position[1], PAGE, horizon)
        for row in rows:
            event = _event(row)
            self.position = event.position
            for sub in list(self.subscribers.get(event.user_id, ())):
                sub.deliver(event)
        return len(rows)
