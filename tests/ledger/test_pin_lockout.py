"""PIN attempts: five wrong in a row lock PIN payments for every channel; a right one resets the count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from ledger.pins import check_user_pin
from tests.ledger.conftest import MakeUser


async def test_right_pin_is_ok_and_resets_the_count(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    user = await make_user(pin="4321")
    assert (await check_user_pin(pool, user, "1111")).attempts_left == 4
    assert (await check_user_pin(pool, user, "4321")).outcome == "ok"
    wrong = await check_user_pin(pool, user, "1111")
    assert (wrong.outcome, wrong.attempts_left) == ("wrong", 4)


async def test_five_wrong_pins_lock_even_the_right_one(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    user = await make_user(pin="4321")
    outcomes = [(await check_user_pin(pool, user, "0000")).outcome for _ in range(5)]
    assert outcomes == ["wrong", "wrong", "wrong", "wrong", "locked"]
    locked = await check_user_pin(pool, user, "4321")
    assert locked.outcome == "locked" and locked.locked_until is not None
    # The lock runs out; then the right PIN works again and the count starts afresh.
    later = datetime.now(UTC) + timedelta(hours=2)
    assert (await check_user_pin(pool, user, "4321", now=later)).outcome == "ok"


async def test_concurrent_wrong_pins_are_all_counted(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    user = await make_user(pin="4321")
    results = await asyncio.gather(*(check_user_pin(pool, user, "9999") for _ in range(8)))
    assert sorted(r.outcome for r in results).count("locked") == 4  # the 5th and every one after it
    assert await pool.fetchval("SELECT pin_failed_attempts FROM profiles WHERE id = $1", user) == 5


async def test_no_pin_set(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    user = await make_user()
    assert (await check_user_pin(pool, user, "4321")).outcome == "not_set"
