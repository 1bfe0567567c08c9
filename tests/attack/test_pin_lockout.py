"""A PIN guesser who waits out each lockout: before, every lock that ran out gave five fresh guesses (120 a
day, the whole 4-digit space in under three months). Now the count is kept until a right PIN, and each
wrong PIN after a lock locks again at once, for twice as long as the lock before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from ledger.pins import check_user_pin
from ledger.rules import read_rules
from ledger.users import create_user
from tests.ledger.conftest import fresh_phone


async def test_waiting_out_locks_gives_one_guess_per_ever_longer_lock(db: asyncpg.Pool) -> None:
    user = (await create_user(db, fresh_phone(), pin="7392")).user_id
    # The first lock's length is the ledger's (ONGEA_PIN_LOCKOUT_SECONDS, 15 minutes by default).
    lock_unit = timedelta(seconds=(await read_rules(db)).pin_lockout_seconds)
    t = datetime.now(UTC)
    outcomes = [(await check_user_pin(db, user, f"{n:04d}", now=t)).outcome for n in range(1000, 1005)]
    assert outcomes == ["wrong"] * 4 + ["locked"]
    guesses = 5
    for lock in (1, 2, 4, 8):  # lengths of the lock now in force, in first locks
        t += lock * lock_unit + timedelta(seconds=1)
        again = await check_user_pin(db, user, f"{2000 + guesses:04d}", now=t)
        guesses += 1
        assert again.outcome == "locked" and again.locked_until == t + 2 * lock * lock_unit
    # In the 15 lock lengths after the first lock the guesser had 4 guesses more, not 20.
    assert guesses == 9
    # The owner's right PIN, once the lock has run out, works and starts the count afresh.
    t += 16 * lock_unit + timedelta(seconds=1)
    assert (await check_user_pin(db, user, "7392", now=t)).outcome == "ok"
    wrong = await check_user_pin(db, user, "1111", now=t)
    assert (wrong.outcome, wrong.attempts_left) == ("wrong", 4)
