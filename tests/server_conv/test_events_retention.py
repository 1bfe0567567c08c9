"""The live feed's retention: the sweeper removes events older than a week, and a stream resumed from an id
older than what was removed is told to reload (`reset`) instead of silently missing events."""

from __future__ import annotations

import aiohttp
import asyncpg

from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.sse import EventStream
from tests.server_conv.test_events_feed import _spend, _truth
from voice_server.sweeper import sweep


async def test_old_events_are_swept_and_a_stream_resumed_from_before_them_is_told_to_reload(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(plan="basic")
    await _spend(pool, user.user_id, "100")
    old = await _truth(pool, user.user_id, (0, 0))
    await pool.execute(
        "UPDATE app_events SET created_at = now() - interval '8 days' WHERE user_id = $1", user.user_id
    )
    await _spend(pool, user.user_id, "200")
    kept = await _truth(pool, user.user_id, (0, 0))
    result = await sweep(pool)
    assert result.events_pruned >= len(old)
    left = await _truth(pool, user.user_id, (0, 0))
    assert not set(old) & set(left) and set(left) == set(kept) - set(old)

    async with aiohttp.ClientSession() as http:
        stream = await EventStream.open(http, server.url, user.token, last_event_id=old[0])
        first = await stream.next()
        stream.close()
        assert first.event == "reset"
        # From an id after everything removed, it simply resumes.
        stream = await EventStream.open(http, server.url, user.token, last_event_id=left[0])
        resumed = await stream.next()
        stream.close()
    assert resumed.id == left[1]
