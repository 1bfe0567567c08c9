"""The same session driven from two connections at once: events are applied one at a time under the
session row's lock, so a tap and a spoken yes commit once, and a revision racing a confirmation never lets
the old confirmation pay the new version. The ledger's invariants hold after every race."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest

from ledger.db import create_pool
from ledger.invariants import check_invariants
from tests.conversation.conftest import MakeUser
from voice_server.conversation.driver import SessionDriver, TurnResult
from voice_server.dialogue.events import Tap, ToolConfirm, Utterance
from voice_server.settings import Settings

ROUNDS = 6


@pytest.fixture
async def second_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Another server process's pool: its own connections to the same database."""
    pool = await create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def _proposed(
    driver: SessionDriver, session_id: str, user: uuid.UUID, text: str
) -> tuple[uuid.UUID, int]:
    result = await driver.handle(session_id, user, Utterance(text))
    assert result.proposal is not None, result
    return uuid.UUID(str(result.proposal["proposal_id"])), int(str(result.proposal["version"]))


async def _confirmed(pool: asyncpg.Pool, user: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            """SELECT amount, version, voice_verified FROM transactions
               WHERE user_id = $1 AND confirmed_at IS NOT NULL""",
            user,
        )
    )


async def test_a_tap_and_a_spoken_yes_together_commit_once(
    pool: asyncpg.Pool, second_pool: asyncpg.Pool, settings: Settings, make_user: MakeUser
) -> None:
    here, there = SessionDriver(pool, settings), SessionDriver(second_pool, settings)
    for _ in range(ROUNDS):
        user = await make_user(balance="1000.00")
        session = await here.start_session(user)
        pid, version = await _proposed(here, session.session_id, user, "send 500 to mama")
        results: list[TurnResult] = list(
            await asyncio.gather(
                here.handle(session.session_id, user, Tap("confirm", pid, version)),
                there.handle(session.session_id, user, Utterance("yes")),
                there.handle(session.session_id, user, ToolConfirm(pid, version)),
            )
        )
        commits = [r for r in results if r.committed is not None]
        assert len(commits) == 1, [r.outcome for r in results]
        rows = await _confirmed(pool, user)
        assert len(rows) == 1 and rows[0]["amount"] == Decimal("500.00")
        wallet = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user)
        assert wallet == Decimal("497.50")  # debited once: 500 + 0.5% fee
        assert await check_invariants(pool, [user]) == []


async def test_a_revision_racing_a_confirmation_never_pays_an_unread_version(
    pool: asyncpg.Pool, second_pool: asyncpg.Pool, settings: Settings, make_user: MakeUser
) -> None:
    here, there = SessionDriver(pool, settings), SessionDriver(second_pool, settings)
    for _ in range(ROUNDS):
        user = await make_user(balance="2000.00")
        session = await here.start_session(user)
        pid, version = await _proposed(here, session.session_id, user, "send 500 to mama")
        revised, tapped = await asyncio.gather(
            here.handle(session.session_id, user, Utterance("no, make it 700")),
            there.handle(session.session_id, user, Tap("confirm", pid, version)),
        )
        rows = await _confirmed(pool, user)
        if tapped.committed is not None:
            # The tap came first: version 1 (500) was paid; the correction found nothing left to change.
            assert [(r["amount"], r["version"]) for r in rows] == [(Decimal("500.00"), 1)]
            assert revised.committed is None and revised.proposal is None
        else:
            # The correction came first: the tap named version 1 and was refused; nothing was paid.
            assert tapped.rejected == "stale_version" and rows == []
            assert revised.proposal is not None and revised.proposal["version"] == 2
            done = await there.handle(session.session_id, user, Utterance("yes"))
            assert done.committed is not None and done.committed["amount"] == "700.00"
        assert await check_invariants(pool, [user]) == []


async def _wait_for_a_lock_waiter(pool: asyncpg.Pool) -> None:
    for _ in range(200):
        waiting = await pool.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'"""
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the turn never waited for the session lock")


async def test_a_turn_that_waited_for_the_lock_sees_what_the_turn_before_it_changed(
    pool: asyncpg.Pool, second_pool: asyncpg.Pool, settings: Settings, make_user: MakeUser
) -> None:
    """The turn before (on another connection) locked the PIN, and also the contacts changed meanwhile: a
    turn queued behind it reads the user's facts as that turn left them, not as they were when it began to
    wait (one statement that waits for a row lock sees the rest of the database as it was before)."""
    driver = SessionDriver(pool, settings)
    user = await make_user(balance="5000.00", pin="4321")
    session = await driver.start_session(user)
    async with second_pool.acquire() as conn, conn.transaction():
        # What a turn does: the session row locked, the PIN locked (a fifth wrong attempt), its state stored.
        await conn.execute(
            "SELECT 1 FROM voice_sessions WHERE session_id = $1 FOR UPDATE", session.session_id
        )
        queued = asyncio.get_running_loop().create_task(
            driver.handle(session.session_id, user, Utterance("send 2000 to kamau"))
        )
        await _wait_for_a_lock_waiter(pool)
        await conn.execute(
            "UPDATE profiles SET pin_locked_until = now() + interval '1 hour' WHERE id = $1", user
        )
        await conn.execute(
            "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, 'Kamau Njoroge', '254711222333')",
            user,
        )
        await conn.execute(
            "UPDATE voice_sessions SET turns = turns + 1 WHERE session_id = $1", session.session_id
        )
    result = await queued
    # Kamau was found (the contact added by the turn before) and the PIN is locked: refused before read-back.
    assert result.outcome == "rejected" and result.rejected == "pin_locked", result
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", user) == 0

    # Uncontended, the same facts are read with the session row.
    again = await driver.handle(session.session_id, user, Utterance("send 2000 to kamau"))
    assert again.outcome == "rejected" and again.rejected == "pin_locked", again
    await pool.execute("UPDATE profiles SET pin_locked_until = NULL WHERE id = $1", user)
    proposed = await driver.handle(session.session_id, user, Utterance("send 2000 to kamau"))
    assert proposed.outcome == "proposed" and proposed.proposal is not None
    assert proposed.proposal["phone"] == "254711222333"
    assert await check_invariants(pool, [user]) == []
