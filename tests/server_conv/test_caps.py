"""Caps that hold under concurrency, against a real `ongea-pesa serve`: 120 session mints at once for one user
against the cap of 50 (ONGEA_SESSIONS_PER_USER) make 50 sessions, and 120 demo users asked for at once from
a process allowed 50 (ONGEA_DEMO_USERS_PER_PROCESS) make 50 users."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import asyncpg

from tests.server_conv.conftest import MakeUser, Server, quick_start_server


async def _at_once(method: str, url: str, count: int, **kwargs: Any) -> list[tuple[int, dict[str, Any]]]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one() -> tuple[int, dict[str, Any]]:
            async with http.request(method, url, **kwargs) as r:
                return r.status, await r.json()

        return await asyncio.gather(*(one() for _ in range(count)))


async def test_120_concurrent_mints_make_at_most_the_cap_of_sessions(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    answers = await _at_once("POST", f"{server.url}/v1/sessions", 120, headers=user.headers)
    statuses = [s for s, _ in answers]
    assert statuses.count(201) == 50 and statuses.count(429) == 70, statuses
    assert {b["error"]["code"] for s, b in answers if s == 429} == {"too_many_sessions"}
    active = await pool.fetchval(
        "SELECT count(*) FROM voice_sessions WHERE user_id = $1 AND status = 'active'", user.user_id
    )
    assert active == 50


async def test_120_concurrent_demo_users_make_at_most_the_cap() -> None:
    with quick_start_server(ONGEA_DEMO_USERS_PER_PROCESS="50") as (served, _data):
        answers = await _at_once(
            "POST", f"{served.base}/v1/dev/demo-user", 120, json={}, timeout=aiohttp.ClientTimeout(300)
        )
        statuses = [s for s, _ in answers]
        assert statuses.count(201) == 50 and statuses.count(429) == 70, statuses
        assert {b["error"]["code"] for s, b in answers if s == 429} == {"too_many_demo_users"}
        made = {b["user_id"] for s, b in answers if s == 201}
        assert len(made) == 50
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{served.base}/v1/dev/demo-user", json={}) as r:
                assert r.status == 429  # and it stays at the cap
        assert not re.search(r"Traceback", served.output())
