"""An address book bigger than the limits, sent at once or in parallel: refused in JSON, never past the
10,000 contacts a user may keep."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from .conftest import Client


def _book(first: int, n: int) -> list[dict[str, str]]:
    return [{"name": f"Rafiki {first + i}", "phone": f"07{(first + i):08d}"} for i in range(n)]


async def test_ten_thousand_and_one_entries_at_once_are_refused(
    client: Client, make_user: Any, db: asyncpg.Pool
) -> None:
    user = await make_user()
    r = await client.call(
        "POST", "/v1/contacts:import", user, json_body={"contacts": _book(10_000_000, 10_001)}
    )
    assert r.status in (400, 413) and r.content_type == "application/json", r.body
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 0


async def test_parallel_imports_never_pass_the_limit(
    client: Client, make_user: Any, db: asyncpg.Pool
) -> None:
    user = await make_user()
    await db.execute(
        """INSERT INTO contacts (user_id, name, phone_number)
           SELECT $1, 'Saved ' || n, '2547' || lpad(n::text, 8, '0') FROM generate_series(1, 9000) AS n""",
        user.id,
    )
    books = [_book(20_000_000 + 1000 * k, 600) for k in range(3)]
    replies = await asyncio.gather(
        *(client.call("POST", "/v1/contacts:import", user, json_body={"contacts": b}) for b in books)
    )
    assert sorted(r.status for r in replies) == [201, 400, 400], [r.body for r in replies]
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 9600
