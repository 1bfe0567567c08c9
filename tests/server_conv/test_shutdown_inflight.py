"""SIGTERM while a turn is in flight: the existing SIGTERM test only has an idle socket, so nothing shows that
a payment half way through is finished (once) before the 1001, nor that minting is refused during the grace.
The turn is held in flight by locking its `voice_sessions` row from the test's own connection."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import websockets

from tests.server_conv.conftest import MakeUser, Server, User, start_server
from tests.server_conv.wsclient import Conv, mint, propose_by_tool, tool, tool_result
from tests.serving import poll_until


async def _sigterm_while_the_turn_waits(
    srv: Server, pool: asyncpg.Pool, user: User, session_id: str, start_turn: Callable[[], Awaitable[object]]
) -> None:
    """Lock the session's row, start a turn (it blocks on the lock), SIGTERM the server, check that minting
    is refused with 503 `shutting_down` while the server waits for that turn, then release the lock."""
    async with pool.acquire() as holder:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM voice_sessions WHERE session_id = $1 FOR UPDATE", session_id)
        await start_turn()

        async def turn_waits_on_the_lock() -> bool:
            blocked = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                holder.get_server_pid(),
            )
            return bool(blocked)

        await poll_until("the turn to wait on the row lock", turn_waits_on_the_lock)
        srv.proc.send_signal(signal.SIGTERM)
        await poll_until(
            "the server to wait for its turn in flight",
            lambda: "waiting for 1 turns in flight" in srv.output(),
        )
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{srv.url}/v1/sessions", headers=user.headers) as r:
                refused = (r.status, await r.json())
        assert refused[0] == 503, refused
        assert refused[1]["error"]["code"] == "shutting_down" and refused[1]["error"]["message"], refused
        assert srv.proc.poll() is None  # still in its grace, waiting for the turn
        await lock.rollback()


async def _paid_once(pool: asyncpg.Pool, user: User, transaction_id: uuid.UUID) -> None:
    """The payment went through and its amount and fee were debited once; nothing else was made."""
    row = await pool.fetchrow("SELECT status, amount, fee FROM transactions WHERE id = $1", transaction_id)
    assert row["status"] in ("processing", "completed"), row
    debits = await pool.fetch(
        "SELECT change_amount FROM balance_history WHERE transaction_id = $1 AND change_amount < 0",
        transaction_id,
    )
    assert sorted(d["change_amount"] for d in debits) == sorted([-row["amount"], -row["fee"]])
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", user.user_id) == 1


async def test_sigterm_finishes_the_turn_in_flight_refuses_new_sessions_and_exits_0(
    database_url: str, tmp_path: Path, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    srv = await asyncio.to_thread(start_server, database_url, tmp_path)
    try:
        user = await make_user(balance="1500.00")
        session = await mint(srv.url, user.token)
        conv, _ = await Conv.open(session["ws_url"])
        card = (await conv.say("send 100 to mama")).calls("show_proposal")[0]
        transaction_id = uuid.UUID(str(card["parameters"]["proposal_id"]))

        tap = tool_result(card["tool_call_id"])
        await _sigterm_while_the_turn_waits(srv, pool, user, session["session_id"], lambda: conv.send(tap))

        events: list[dict[str, Any]] = []
        try:
            while True:
                events.append(await conv.recv(20))
        except websockets.ConnectionClosed:
            pass
        assert conv.ws.close_code == 1001, (conv.ws.close_code, events)
        ends = [e for e in events if e["type"] == "agent_response" and "turn" in e["agent_response_event"]]
        assert [e["agent_response_event"]["turn"]["outcome"] for e in ends] == ["committed"], events
        receipts = [
            e["client_tool_call"]["parameters"]
            for e in events
            if e["type"] == "client_tool_call" and e["client_tool_call"]["tool_name"] == "show_receipt"
        ]
        assert [r["transaction_id"] for r in receipts] == [str(transaction_id)], events
        assert await asyncio.to_thread(srv.proc.wait, 40) == 0, srv.output()[-3000:]
    finally:
        srv.stop()

    await _paid_once(pool, user, transaction_id)


async def test_sigterm_answers_a_tool_confirm_in_flight_before_exiting(
    database_url: str, tmp_path: Path, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The same with an agent's `confirm_transaction` HTTP call in flight: it gets its 200 and the payment."""
    srv = await asyncio.to_thread(start_server, database_url, tmp_path)
    try:
        user = await make_user(balance="1500.00")
        session = await mint(srv.url, user.token)
        sid, token = session["session_id"], session["session_token"]
        proposed = await propose_by_tool(srv.url, session, "100", "Mama")
        confirm = {"session_id": sid, "proposal_id": proposed["proposal_id"], "version": proposed["version"]}
        answer: list[asyncio.Task[tuple[int, dict[str, Any]]]] = []

        async def start() -> None:
            answer.append(asyncio.create_task(tool(srv.url, token, "confirm_transaction", confirm)))

        await _sigterm_while_the_turn_waits(srv, pool, user, sid, start)
        status, confirmed = await asyncio.wait_for(answer[0], 20)
        assert status == 200 and confirmed["outcome"] == "committed", confirmed
        assert await asyncio.to_thread(srv.proc.wait, 40) == 0, srv.output()[-3000:]
    finally:
        srv.stop()
    await _paid_once(pool, user, uuid.UUID(proposed["proposal_id"]))


async def test_sigterm_also_waits_for_a_turn_that_starts_during_the_grace(
    database_url: str, tmp_path: Path, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """A person who taps while the server is already waiting for another turn gets the answer before the
    1001: the grace covers every turn, not only those in flight when the signal came."""
    srv = await asyncio.to_thread(start_server, database_url, tmp_path)
    try:
        first_user, late_user = await make_user(balance="1500.00"), await make_user(balance="1500.00")
        first, late = await mint(srv.url, first_user.token), await mint(srv.url, late_user.token)
        first_conv, _ = await Conv.open(first["ws_url"])
        late_conv, _ = await Conv.open(late["ws_url"])
        first_card = (await first_conv.say("send 100 to mama")).calls("show_proposal")[0]
        late_card = (await late_conv.say("send 100 to mama")).calls("show_proposal")[0]
        late_id = uuid.UUID(str(late_card["parameters"]["proposal_id"]))

        async with pool.acquire() as first_holder, pool.acquire() as late_holder:
            holds = []
            for holder, session in ((first_holder, first), (late_holder, late)):
                hold = holder.transaction()
                await hold.start()
                await holder.execute(
                    "SELECT 1 FROM voice_sessions WHERE session_id = $1 FOR UPDATE", session["session_id"]
                )
                holds.append(hold)

            def waits_on(holder: asyncpg.Connection) -> Callable[[], Awaitable[bool]]:
                async def check() -> bool:
                    blocked = await pool.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                        holder.get_server_pid(),
                    )
                    return bool(blocked)

                return check

            await first_conv.send(tool_result(first_card["tool_call_id"]))
            await poll_until("the first tap to wait on its row lock", waits_on(first_holder))
            srv.proc.send_signal(signal.SIGTERM)
            await poll_until(
                "the server to wait for its turn in flight",
                lambda: "waiting for 1 turns in flight" in srv.output(),
            )
            await late_conv.send(tool_result(late_card["tool_call_id"]))  # the server is in its grace now
            await poll_until("the late tap to wait on its row lock", waits_on(late_holder))
            await holds[0].rollback()  # the first turn finishes
            first_events = [await first_conv.recv(20)]
            while not any(e["type"] == "client_tool_call" for e in first_events):
                first_events.append(await first_conv.recv(20))
            await asyncio.sleep(0.5)  # (time for a server that forgot the late turn to close its socket)
            await holds[1].rollback()  # the late turn finishes

        late_events: list[dict[str, Any]] = []
        try:
            while True:
                late_events.append(await late_conv.recv(20))
        except websockets.ConnectionClosed:
            pass
        assert late_conv.ws.close_code == 1001, (late_conv.ws.close_code, late_events)
        ends = [
            e["agent_response_event"]["turn"]["outcome"]
            for e in late_events
            if e["type"] == "agent_response" and "turn" in e["agent_response_event"]
        ]
        assert ends == ["committed"], late_events
        assert await asyncio.to_thread(srv.proc.wait, 40) == 0, srv.output()[-3000:]
    finally:
        srv.stop()
    await _paid_once(pool, late_user, late_id)
