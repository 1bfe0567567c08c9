"""The session driver on a real database: sessions, closed sessions, state stored with the row, and input that
must change nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from ledger.invariants import check_invariants
from tests.conversation.conftest import MakeUser
from voice_server.conversation.driver import SessionClosed, SessionDriver
from voice_server.dialogue.events import AskBalance, PinEntry, Tap, Tick, ToolConfirm, ToolPropose, Utterance
from voice_server.settings import Settings


async def _status(pool: asyncpg.Pool, user_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch("SELECT status FROM transactions WHERE user_id = $1 ORDER BY created_at", user_id)
    return [r["status"] for r in rows]


async def test_a_spoken_payment_end_to_end(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session = await driver.start_session(user, language="en")
    hello = await driver.greeting(session.session_id, user)
    assert hello.say and hello.outcome == "answered"
    proposed = await driver.handle(session.session_id, user, Utterance("send 500 to mama"))
    assert proposed.outcome == "proposed"
    assert proposed.proposal is not None and proposed.proposal["amount"] == "500.00"
    card = proposed.client_events[0]
    assert card.tool_name == "show_proposal" and card.parameters["fee"] == "2.50"
    assert await _status(pool, user) == ["pending"]
    done = await driver.handle(session.session_id, user, Utterance("yes"))
    assert done.outcome == "committed" and done.committed is not None
    assert done.committed["voice_verified"] is True and done.proposal is None
    assert [e.tool_name for e in done.client_events] == ["show_receipt"]
    row = await pool.fetchrow("SELECT voice_verified, status FROM transactions WHERE user_id = $1", user)
    assert row is not None and row["voice_verified"] is True and row["status"] == "processing"
    stored = await pool.fetchrow(
        "SELECT dialogue_state, turns FROM voice_sessions WHERE session_id = $1", session.session_id
    )
    assert stored is not None and stored["dialogue_state"]["phase"] == "idle" and stored["turns"] == 3
    assert await check_invariants(pool, [user]) == []


async def test_the_state_lives_in_the_row_so_another_driver_continues(
    pool: asyncpg.Pool, settings: Settings, make_user: MakeUser
) -> None:
    user = await make_user()
    one, two = SessionDriver(pool, settings), SessionDriver(pool, settings)
    session = await one.start_session(user)
    proposed = await one.handle(session.session_id, user, Utterance("send 300 to mama"))
    assert proposed.proposal is not None
    done = await two.handle(
        session.session_id,
        user,
        Tap(
            "confirm",
            uuid.UUID(str(proposed.proposal["proposal_id"])),
            int(str(proposed.proposal["version"])),
        ),
    )
    assert done.outcome == "committed" and done.committed is not None
    assert done.committed["voice_verified"] is False


async def test_closed_sessions_accept_nothing(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user, other = await make_user(), await make_user()
    session = await driver.start_session(user)
    with pytest.raises(SessionClosed) as missing:
        await driver.handle("vs_nope", user, Utterance("hi"))
    assert missing.value.code == "not_found"
    with pytest.raises(SessionClosed) as forbidden:
        await driver.handle(session.session_id, other, Utterance("send 500 to mama"))
    assert forbidden.value.code == "forbidden"
    proposed = await driver.handle(session.session_id, user, Utterance("send 500 to mama"))
    assert proposed.proposal is not None
    await driver.end_session(session.session_id, user)
    await driver.end_session(session.session_id, user)  # idempotent
    assert await _status(pool, user) == ["cancelled"]
    with pytest.raises(SessionClosed) as ended:
        await driver.handle(session.session_id, user, Utterance("yes"))
    assert ended.value.code == "ended"
    assert await _status(pool, user) == ["cancelled"]
    for bad in ("", "x" * 500):
        with pytest.raises(SessionClosed):
            await driver.handle(bad, user, Tick())


async def test_an_expired_session_voids_its_proposal_and_says_expired(
    pool: asyncpg.Pool, settings: Settings, make_user: MakeUser
) -> None:
    now = [datetime.now(UTC)]
    driver = SessionDriver(pool, settings, clock=lambda: now[0])
    user = await make_user()
    session = await driver.start_session(user)
    assert session.expires_at == now[0] + timedelta(seconds=settings.session_ttl_seconds)
    await driver.handle(session.session_id, user, Utterance("send 500 to mama"))
    now[0] += timedelta(seconds=settings.session_ttl_seconds)
    with pytest.raises(SessionClosed) as expired:
        await driver.handle(session.session_id, user, Utterance("yes"))
    assert expired.value.code == "expired"
    assert await _status(pool, user) == ["cancelled"]
    status = await pool.fetchval(
        "SELECT status FROM voice_sessions WHERE session_id = $1", session.session_id
    )
    assert status == "expired"
    balance = await pool.fetchrow("SELECT wallet_balance, held_balance FROM profiles WHERE id = $1", user)
    assert (
        balance is not None and balance["held_balance"] == 0 and balance["wallet_balance"] == Decimal("5000")
    )


async def test_a_tool_confirm_of_an_older_version_is_refused(
    driver: SessionDriver, make_user: MakeUser
) -> None:
    user = await make_user()
    session = await driver.start_session(user)
    first = await driver.handle(session.session_id, user, Utterance("send 500 to mama"))
    assert first.proposal is not None
    pid = uuid.UUID(str(first.proposal["proposal_id"]))
    second = await driver.handle(session.session_id, user, Utterance("no, make it 600"))
    assert second.proposal is not None and second.proposal["version"] == 2
    stale = await driver.handle(session.session_id, user, ToolConfirm(pid, 1))
    assert stale.rejected == "stale_version" and stale.committed is None
    done = await driver.handle(session.session_id, user, ToolConfirm(pid, 2))
    assert done.committed is not None and done.committed["amount"] == "600.00"


async def test_pin_is_checked_against_the_shared_lockout(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(pin="4321")
    session = await driver.start_session(user)
    await driver.handle(session.session_id, user, Utterance("send 1500 to mama"))
    asked = await driver.handle(session.session_id, user, Utterance("yes"))
    assert asked.asked == "pin" and [e.tool_name for e in asked.client_events] == ["request_pin"]
    wrong = await driver.handle(session.session_id, user, PinEntry("1111"))
    assert wrong.asked == "pin" and wrong.committed is None
    assert await pool.fetchval("SELECT pin_failed_attempts FROM profiles WHERE id = $1", user) == 1
    junk = await driver.handle(session.session_id, user, PinEntry("'; DROP TABLE profiles; --"))
    assert junk.committed is None
    ok = await driver.handle(session.session_id, user, PinEntry("4321"))
    assert ok.committed is not None and ok.committed["amount"] == "1500.00"


async def test_tool_input_that_is_wrong_changes_nothing(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session = await driver.start_session(user)
    for fields in (
        {"type": "send_phone", "amount": "-5", "recipient": "Mama"},
        {"type": "send_phone", "amount": "NaN", "phone": "0712345678"},
        {"type": "send_phone", "amount": "1e400", "phone": "0712345678"},
        {"type": "send_phone", "amount": {"x": 1}, "phone": "0712345678"},
        {"type": "drop table", "amount": "5"},
        {"type": "paybill", "amount": "500", "paybill": "888880", "account": "A" * 40},
        {"type": "send_phone", "amount": "500", "recipient": "Robert'); DROP TABLE contacts;--"},
    ):
        result = await driver.handle(session.session_id, user, ToolPropose(fields))
        assert result.outcome in ("rejected", "asked"), (fields, result)
        assert result.committed is None
    assert await _status(pool, user) == []
    balance = await driver.handle(session.session_id, user, AskBalance())
    assert balance.balance == "5000.00"
    state = await pool.fetchval(
        "SELECT dialogue_state FROM voice_sessions WHERE session_id = $1", session.session_id
    )
    json.dumps(state)


async def test_users_cannot_mint_or_forge_sessions(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    user = await make_user()
    claims = json.dumps({"sub": str(user), "role": "authenticated"})
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
            claims,
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                """INSERT INTO voice_sessions (user_id, session_id, agent_id, expires_at, dialogue_state)
                   VALUES ($1, 'forged', 'x', now() + interval '10 years',
                           '{"phase": "read_back"}'::jsonb)""",
                user,
            )


async def test_an_unreadable_stored_state_starts_afresh_and_confirms_nothing(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session = await driver.start_session(user)
    await driver.handle(session.session_id, user, Utterance("send 500 to mama"))
    await pool.execute(
        """UPDATE voice_sessions SET dialogue_state = '{"phase": "read_back", "proposal": {"version": "x"}}'
           WHERE session_id = $1""",
        session.session_id,
    )
    result = await driver.handle(session.session_id, user, Utterance("yes"))
    assert result.committed is None and result.rejected == "nothing_to_confirm"
    assert await _status(pool, user) == ["pending"]  # left to expire (the sweeper voids it)


async def test_a_flood_of_words_is_cut_to_one_breath(driver: SessionDriver, make_user: MakeUser) -> None:
    user = await make_user()
    session = await driver.start_session(user)
    result = await driver.handle(session.session_id, user, Utterance("send 500 to mama " * 20000))
    assert result.outcome in ("proposed", "rejected", "asked")


async def test_a_tap_naming_someone_elses_proposal_confirms_nothing(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    victim, attacker = await make_user(), await make_user()
    theirs = await driver.start_session(victim)
    proposed = await driver.handle(theirs.session_id, victim, Utterance("send 500 to mama"))
    assert proposed.proposal is not None
    pid = uuid.UUID(str(proposed.proposal["proposal_id"]))
    mine = await driver.start_session(attacker)
    await driver.handle(mine.session_id, attacker, Utterance("send 100 to mama"))
    for event in (Tap("confirm", pid, 1), ToolConfirm(pid, 1)):
        result = await driver.handle(mine.session_id, attacker, event)
        assert result.committed is None and result.rejected == "stale_version"
    assert await _status(pool, victim) == ["pending"]
    assert await _status(pool, attacker) == ["pending"]


async def test_a_limit_reached_between_read_back_and_yes_is_said_with_the_balance(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00", plan="free")
    one = await driver.start_session(user)
    for _ in range(4):
        await driver.handle(one.session_id, user, Utterance("send 100 to mama"))
        done = await driver.handle(one.session_id, user, Utterance("yes"))
        assert done.committed is not None
    two = await driver.start_session(user)
    await driver.handle(one.session_id, user, Utterance("send 100 to mama"))
    await driver.handle(two.session_id, user, Utterance("send 200 to mama"))
    fifth = await driver.handle(one.session_id, user, Utterance("yes"))
    assert fifth.committed is not None
    sixth = await driver.handle(two.session_id, user, Utterance("yes"))
    assert sixth.rejected == "monthly_limit" and sixth.committed is None and sixth.cancelled
    said = " ".join(s.text for s in sixth.say)
    assert "this month" in said and "KES 4,490" in said
    assert await _status(pool, user) == ["processing"] * 5 + ["cancelled"]
    assert await check_invariants(pool, [user]) == []


async def test_the_state_is_stored_verbatim_whatever_the_person_said(
    driver: SessionDriver, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """Whatever the person says (quotes, dollar quotes, SQL) is stored in the dialogue state as said and
    changes nothing else."""
    user = await make_user()
    session = await driver.start_session(user)
    for said in (
        "send 500 to $state$'); UPDATE profiles SET wallet_balance = 1e9; --",
        "send 500 to $$ \\' \" \\\\ $state_ab$ $ state $state",
        "tuma 500 kwa Mzee wa 'Kijiji' 🙂 — ñ",
    ):
        answer = await driver.handle(session.session_id, user, Utterance(said))
        assert answer.outcome == "asked" and answer.asked == "recipient", (said, answer)
        stored = await pool.fetchrow(
            "SELECT dialogue_state, turns FROM voice_sessions WHERE session_id = $1", session.session_id
        )
        assert stored is not None and stored["dialogue_state"]["draft"]["text"] == said
        cancelled = await driver.handle(session.session_id, user, Utterance("cancel"))
        assert cancelled.outcome in ("cancelled", "answered"), cancelled
    wallet = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user)
    assert wallet == Decimal("5000.00")
    assert (
        await pool.fetchval("SELECT turns FROM voice_sessions WHERE session_id = $1", session.session_id) == 6
    )
