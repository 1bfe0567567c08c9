"""`GET /v1/events` against real `ongea-pesa serve` processes on one real PostgreSQL: a payment made through
one server reaches the other's stream, a stream cut (and a server restarted) resumes from `Last-Event-ID`
with nothing missed and nothing repeated, another user's rows never appear, and the attacks on the stream
(forged or expired tokens, ended sessions, foreign and absurd event ids) are refused or come to nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import jwt
import pytest

from ledger.models import ProposalRequest
from ledger.service import Ledger
from tests.gate_rules import confirm_as_a_person
from tests.server_conv.conftest import JWT_SECRET, SESSION_SECRET, MakeUser, Server, User, start_server
from tests.server_conv.sse import EventStream, Sse
from tests.server_conv.wsclient import Conv, mint
from voice_server.auth import mint_user_token
from voice_server.session_tokens import mint_session_token


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This file's own first server, started before `second`, as on main (not the shared one of
    tests.serving). test_concurrent_writers fails now and then on main as well (a stream misses some events
    of one transaction; main's own run of this folder failed it once at a load of 8); with the shared server
    it failed in 3 of 4 runs of this file on a loaded machine, so this file keeps main's setting until the
    feed's cause is found."""
    srv = start_server(database_url, tmp_path_factory.mktemp("srv1"))
    yield srv
    assert srv.stop() == 0, srv.output()[-3000:]


@pytest.fixture(scope="module")
def second(server: Server, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(database_url, tmp_path_factory.mktemp("srv2"))
    yield srv
    assert srv.stop() == 0, srv.output()[-3000:]


async def _own_rows(pool: asyncpg.Pool, user: uuid.UUID) -> set[uuid.UUID]:
    rows = await pool.fetch(
        """SELECT id FROM transactions WHERE user_id = $1
           UNION ALL SELECT id FROM balance_history WHERE user_id = $1
           UNION ALL SELECT id FROM mpesa_transactions WHERE user_id = $1 UNION ALL SELECT $1""",
        user,
    )
    return {r["id"] for r in rows}


async def _truth(pool: asyncpg.Pool, user: uuid.UUID, after: tuple[int, int]) -> list[str]:
    """The user's event ids after `after` as the table holds them, in order."""
    rows = await pool.fetch(
        """SELECT xid::text || '-' || id AS id FROM app_events
           WHERE user_id = $1 AND (xid, id) > ($2::text::xid8, $3::bigint) ORDER BY xid, id""",
        user,
        str(after[0]),
        after[1],
    )
    return [r["id"] for r in rows]


async def _spend(pool: asyncpg.Pool, user: uuid.UUID, amount: str) -> uuid.UUID:
    ledger = Ledger(pool)
    request = ProposalRequest.build(type="send_phone", amount=Decimal(amount), phone="254733444555")
    proposal = await ledger.propose(user, request)
    await confirm_as_a_person(ledger, proposal.id, user, proposal.version, pin="4321", voice=False)
    return proposal.id


async def test_a_payment_through_one_server_reaches_the_other_servers_stream(
    server: Server, second: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00", plan="basic")
    async with aiohttp.ClientSession() as http:
        stream = await EventStream.open(http, second.url, user.token)
        ready = await stream.next()
        assert ready.event == "ready"
        conv, _ = await Conv.open((await mint(server.url, user.token))["ws_url"])
        await conv.say("send 500 to mama")
        done = await conv.say("yes")
        await conv.close()
        tx = str(done.calls("show_receipt")[0]["parameters"]["transaction_id"])
        got = await stream.until(
            lambda e: (
                e.event == "transactions" and e.data["id"] == tx and e.data["row"]["status"] == "completed"
            ),
            wait=60,
        )
        stream.close()
    row = await pool.fetchrow("SELECT * FROM transactions WHERE id = $1", uuid.UUID(tx))
    final = got[-1].data["row"]
    assert final["reference"] == row["mpesa_transaction_id"] != "" and Decimal(str(final["amount"])) == 500
    profiles = [e for e in got if e.event == "profiles"]
    assert Decimal(str(profiles[-1].data["row"]["wallet_balance"])) == Decimal("5000") - 500 - row["fee"]
    assert {e.event for e in got} >= {"transactions", "balance_history", "profiles"}
    assert "pin_hash" not in str([e.data for e in got])
    positions = [e.position for e in got]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


async def test_a_cut_stream_resumes_on_another_server_and_after_a_restart_missing_and_repeating_nothing(
    database_url: str, server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    user = await make_user(balance="20000.00", plan="pro")
    seen: list[Sse] = []
    async with aiohttp.ClientSession() as http:
        stream = await EventStream.open(http, server.url, user.token)
        start = await stream.next()
        await _spend(pool, user.user_id, "100")
        seen += await stream.until(lambda e: e.event == "profiles")
        stream.close()  # cut

        for amount in ("110", "120", "130"):  # while nobody listens
            await _spend(pool, user.user_id, amount)
        restarted = start_server(database_url, tmp_path / "restart")
        try:
            stream = await EventStream.open(http, restarted.url, user.token, last_event_id=seen[-1].id)
            await _spend(pool, user.user_id, "140")
            want = await _truth(pool, user.user_id, start.position)
            while len(seen) < len(want):
                seen.append(await stream.next())
            stream.close()
        finally:
            assert restarted.stop() == 0, restarted.output()[-2000:]
        # The restarted server is gone; a later change is read from the table by the first one.
        await _spend(pool, user.user_id, "150")
        stream = await EventStream.open(http, server.url, user.token, last_event_id=seen[-1].id)
        want = await _truth(pool, user.user_id, start.position)
        while len(seen) < len(want):
            seen.append(await stream.next())
        stream.close()
    assert [e.id for e in seen] == want  # every event once, in order
    amounts = [
        e.data["row"]["amount"] for e in seen if e.event == "transactions" and e.data["op"] == "INSERT"
    ]
    assert [Decimal(str(a)) for a in amounts] == [
        Decimal(a) for a in ("100", "110", "120", "130", "140", "150")
    ]


async def test_user_b_never_sees_user_a(server: Server, make_user: MakeUser, pool: asyncpg.Pool) -> None:
    a, b = await make_user(plan="basic"), await make_user(plan="basic")
    async with aiohttp.ClientSession() as http:
        stream_b = await EventStream.open(http, server.url, b.token)
        await stream_b.next()
        for amount in ("101", "102"):
            await _spend(pool, a.user_id, amount)
        await _spend(pool, b.user_id, "103")
        got = await stream_b.until(lambda e: e.event == "profiles")
        # One of A's event ids as Last-Event-ID: B still gets B's own events after it, and only those.
        a_event = (await _truth(pool, a.user_id, (0, 0)))[0]
        resumed = await EventStream.open(http, server.url, b.token, last_event_id=a_event)
        await _spend(pool, a.user_id, "104")
        await _spend(pool, b.user_id, "105")
        more = await resumed.until(lambda e: e.event == "transactions" and e.data["row"]["amount"] == 105)
        stream_b.close()
        resumed.close()
    b_rows = await _own_rows(pool, b.user_id)
    a_rows = await _own_rows(pool, a.user_id)
    for event in got + more:
        assert uuid.UUID(event.data["id"]) in b_rows and uuid.UUID(event.data["id"]) not in a_rows, event
    # A's amounts in no transaction B is shown (by the amount itself: "101" anywhere in an event, as in a
    # random id or a timestamp, failed this once).
    assert not any(
        Decimal(str(e.data["row"]["amount"])) in (101, 102) for e in got + more if e.event == "transactions"
    )


async def test_attacks_on_the_stream_are_refused(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(plan="basic")
    session = await mint(server.url, user.token)
    now = datetime.now(UTC)
    iat = int(now.timestamp())
    claims = {"sub": str(user.user_id), "aud": "authenticated", "role": "authenticated", "iat": iat}
    forged = {
        "garbage": "not-a-token",
        "other key": jwt.encode({**claims, "exp": iat + 600}, "someone-elses-key-0123456789abcdef0", "HS256"),
        "expired user token": mint_user_token(JWT_SECRET, user.user_id, ttl_seconds=60, now=iat - 3600),
        "expired session token": mint_session_token(
            SESSION_SECRET, session["session_id"], user.user_id, now - timedelta(seconds=5)
        ),
        "service role": jwt.encode({**claims, "role": "service_role", "exp": iat + 600}, JWT_SECRET, "HS256"),
    }
    async with aiohttp.ClientSession() as http:
        for name, token in forged.items():
            async with http.get(f"{server.url}/v1/events", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 401, name
                assert (await r.json())["error"]["code"] == "unauthorized"
        async with http.get(f"{server.url}/v1/events") as r:
            assert r.status == 401

        # A live session's token works; once the session is ended it does not.
        stream = await EventStream.open(http, server.url, session["session_token"])
        assert (await stream.next()).event == "ready"
        stream.close()
        async with http.delete(
            f"{server.url}/v1/sessions/{session['session_id']}", headers=user.headers
        ) as r:
            assert r.status == 200
        headers = {"Authorization": f"Bearer {session['session_token']}"}
        async with http.get(f"{server.url}/v1/events", headers=headers) as r:
            assert r.status == 401

        top = "9223372036854775807"
        absurd = (
            "-1",
            "-5-3",
            "abc",
            "1-2-3",
            "99999999999999999999-1",
            f"{top}-{top}",
            "1e9-1",
            "' OR 1=1 --",
        )
        for bad in (*absurd, "1-" + "9" * 400):
            headers = {"Authorization": f"Bearer {user.token}", "Last-Event-ID": bad}
            async with http.get(f"{server.url}/v1/events", headers=headers) as r:
                assert r.status == 400, bad
                assert (await r.json())["error"]["code"] == "invalid_last_event_id", bad
    assert await pool.fetchval("SELECT count(*) FROM app_events WHERE user_id = $1", user.user_id) >= 1
    assert "Traceback" not in server.output()


async def test_a_user_without_a_token_for_it_cannot_open_someone_elses_stream(
    server: Server, make_user: MakeUser
) -> None:
    # The stream is the token's user's: there is no parameter that names a user at all.
    user, other = await make_user(plan="basic"), await make_user(plan="basic")
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/v1/events?user_id={other.user_id}&sub={other.user_id}"
        response = await http.get(url, headers=user.headers, timeout=aiohttp.ClientTimeout(None))
        stream = EventStream(response)
        assert (await stream.next()).event == "ready"
        await asyncio.sleep(0)
        stream.close()
    assert isinstance(User, type)


async def test_one_user_cannot_hold_unbounded_streams(server: Server, make_user: MakeUser) -> None:
    user = await make_user(plan="basic")
    async with aiohttp.ClientSession() as http:
        streams = [await EventStream.open(http, server.url, user.token) for _ in range(16)]
        async with http.get(f"{server.url}/v1/events", headers=user.headers) as r:
            assert r.status == 429 and (await r.json())["error"]["code"] == "too_many_streams"
        streams.pop().close()

        async def reopened() -> EventStream:  # (refused until the server has seen the close)
            while True:
                response = await http.get(
                    f"{server.url}/v1/events", headers=user.headers, timeout=aiohttp.ClientTimeout(None)
                )
                if response.status == 200:
                    return EventStream(response)
                response.release()
                await asyncio.sleep(0.2)

        again = await asyncio.wait_for(reopened(), 30)
        assert (await again.next()).event == "ready"
        for stream in [*streams, again]:
            stream.close()


async def test_concurrent_writers_are_streamed_in_table_order_with_no_gap(
    server: Server, second: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """Transactions of one user committing at once (and in another order than they took their ids): each
    server's stream still carries every event once, in the table's (xid, id) order."""
    user = await make_user(balance="50000.00", plan="pro")
    async with aiohttp.ClientSession() as http:
        streams = [await EventStream.open(http, s.url, user.token) for s in (server, second)]
        starts = [(await s.next()).position for s in streams]

        async def slow_then_spend(hold: float, amount: str) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    """INSERT INTO mpesa_transactions (user_id, checkout_request_id, amount, phone_number)
                       VALUES ($1, $2, $3, $4)""",
                    user.user_id,
                    f"ws_CO_{uuid.uuid4().hex}",
                    Decimal(amount),
                    user.phone,
                )  # an event that takes its id now and commits after the payments below
                await asyncio.sleep(hold)

        async def spend(amount: str) -> None:
            await asyncio.sleep(0.01)
            await _spend(pool, user.user_id, amount)

        await asyncio.gather(
            *(slow_then_spend(0.3 + 0.05 * (i % 4), str(100 + i)) for i in range(6)),
            *(spend(str(200 + i)) for i in range(6)),
        )
        for stream, start in zip(streams, starts, strict=True):
            want = await _truth(pool, user.user_id, start)
            got = [(await stream.next()).id for _ in want]
            assert got == want
            stream.close()
