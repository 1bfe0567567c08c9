"""`GET /v1/events`: the user's own changes as Server-Sent Events (profile, transactions, balance history,
M-Pesa top-ups), for the app's balance and receipts without polling.

`Authorization: Bearer` a user token or a voice session's token (an active session's). Each event is
`id: <xid>-<id>`, `event: <table>`, `data: {"op", "id", "row"}`; a client that reconnects sends the last id
it got as `Last-Event-ID` and gets every later event of its own once, including those written while it was
away or while the server restarted. A stream opened without one starts with a `ready` event whose id marks
where it began. An id older than the retained events gets `reset` (reload what is shown, then go on)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import jwt
from aiohttp import web

from voice_server.appkeys import POOL_KEY, SESSION_TOKENS_KEY
from voice_server.auth import bearer_token, request_user
from voice_server.events_feed import (
    AppEvent,
    EventFeed,
    Position,
    Subscription,
    format_position,
    parse_position,
    read_user_events,
)
from voice_server.http_errors import ApiError
from voice_server.session_tokens import SessionTokenError

log = logging.getLogger(__name__)

FEED_KEY = web.AppKey("events_feed", EventFeed)
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 3600.0  # a stream ends by then (or at its token's expiry); the client resumes
READY_WAIT = 10.0
# Open streams (and conversations watching for receipts) per user in one process: a phone, a tablet, the
# page in a few tabs; more is someone holding the server's memory.
MAX_STREAMS_PER_USER = 16


async def stream_user(request: web.Request) -> tuple[uuid.UUID, float]:
    """The user a stream is for and when its token expires (epoch seconds): a user token, or the token of
    an active voice session; anything else is a 401, before any event is read."""
    token = bearer_token(request)
    try:
        user_id = request_user(request)
    except ApiError:
        if token is None:
            raise
        try:
            claims = request.app[SESSION_TOKENS_KEY].verify(token)
        except SessionTokenError:
            raise ApiError(401, "unauthorized", "the token is not valid") from None
        status = await request.app[POOL_KEY].fetchval(
            "SELECT status FROM voice_sessions WHERE session_id = $1 AND user_id = $2",
            claims.session_id,
            claims.user_id,
        )
        if status != "active":
            raise ApiError(401, "unauthorized", "the voice session is over") from None
        return claims.user_id, claims.expires_at.timestamp()
    assert token is not None
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    return user_id, float(exp) if isinstance(exp, (int, float)) else time.time() + MAX_STREAM_SECONDS


def _last_event_id(request: web.Request) -> Position | None:
    text = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if text is None or text == "":
        return None
    try:
        return parse_position(text)
    except ValueError:
        raise ApiError(400, "invalid_last_event_id", "Last-Event-ID is an id this stream sent") from None


async def _known(feed: EventFeed, last: Position, *, wait: float = 5.0) -> bool:
    """Whether `last` is an id a stream could have sent: at or before what this server's feed has read, or
    what the database holds as final. A server just (re)started may still be catching up with an id another
    server sent, so it is given a few seconds before the id is called foreign."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        if last <= feed.position or last <= await feed.last_final():
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)


def _comment(text: str) -> bytes:
    return f": {text}\n\n".encode()


def _control(name: str, position: Position, data: dict[str, object]) -> bytes:
    body = json.dumps(data, separators=(",", ":"))
    return f"id: {format_position(position)}\nevent: {name}\ndata: {body}\n\n".encode()


async def events_stream(request: web.Request) -> web.StreamResponse:
    feed = request.app[FEED_KEY]
    user_id, token_expiry = await stream_user(request)
    last = _last_event_id(request)
    if feed.closing:
        raise ApiError(503, "shutting_down", "the server is shutting down; reconnect")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(feed.ready.wait(), READY_WAIT)
    if not feed.ready.is_set():
        raise ApiError(503, "feed_unavailable", "the live feed is not ready yet; try again")
    reset = False
    if last is not None:
        if not await _known(feed, last):
            raise ApiError(400, "invalid_last_event_id", "Last-Event-ID is an id this stream sent")
        pruned = await feed.pruned()
        # Retention removed events after this id: the client reloads what it shows and goes on from here.
        reset = pruned is not None and last < pruned
    if len(feed.subscribers.get(user_id, ())) >= MAX_STREAMS_PER_USER:
        raise ApiError(429, "too_many_streams", "too many open event streams for this user; close one")
    sub = feed.subscribe(user_id)  # before the catch-up: nothing falls between the two
    here = feed.position  # what this subscription will be handed comes after this
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        cursor: Position
        if last is None or reset:
            cursor = here
            await response.write(_control("reset" if reset else "ready", cursor, {"resumed": False}))
        else:
            cursor = last
            async for event in _catch_up(request.app[POOL_KEY], user_id, cursor):
                await response.write(event.sse())
                cursor = event.position
        deadline = min(token_expiry, time.time() + MAX_STREAM_SECONDS)
        await _live(response, sub, cursor, deadline)
    except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
        pass
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        log.warning("events stream of a user ended: database unavailable", exc_info=True)
    finally:
        feed.unsubscribe(sub)
    return response


async def _catch_up(pool: asyncpg.Pool, user_id: uuid.UUID, after: Position) -> AsyncIterator[AppEvent]:
    while True:
        events = await read_user_events(pool, user_id, after)
        for event in events:
            yield event
            after = event.position
        if len(events) < 1000:
            return


async def _live(response: web.StreamResponse, sub: Subscription, cursor: Position, deadline: float) -> None:
    while True:
        left = deadline - time.time()
        if left <= 0:
            return
        try:
            event = await asyncio.wait_for(sub.queue.get(), min(HEARTBEAT_SECONDS, left))
        except TimeoutError:
            await response.write(_comment("keep-alive"))
            continue
        if event is None:  # the server is closing, or this stream fell behind: the client resumes
            return
        if event.position <= cursor:
            continue  # already sent by the catch-up
        await response.write(event.sse())
        cursor = event.position


def setup_events(app: web.Application) -> None:
    """The feed (its reader starts with the app, and stops its streams first at shutdown) and its route."""

    app[FEED_KEY] = EventFeed(app[POOL_KEY])

    async def feed_context(app: web.Application) -> AsyncIterator[None]:
        feed = app[FEED_KEY]
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()

    async def close_streams(app: web.Application) -> None:
        await app[FEED_KEY].stop()

    app.cleanup_ctx.append(feed_context)
    app.on_shutdown.append(close_streams)
    app.router.add_get("/v1/events", events_stream)
