"""Who may spend, against a real `serve` and PostgreSQL, as an attacker holding a stolen token would try it:
the agent's tools race payments of KES 1,000, a locked user tries small payments by voice, tap and tool, and
a PIN said aloud in the PIN step must leave no trace in the database or the server's log."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from ledger.db import create_pool
from ledger.migrate import migrate
from ledger.pins import check_user_pin
from ledger.users import create_user
from tests.server_conv.conftest import JWT_SECRET, MakeUser, Server, start_server
from tests.server_conv.test_tools import _wallet
from tests.server_conv.wsclient import Conv, mint, propose_by_tool, tool
from tests.serving import poll_until
from voice_server.auth import mint_user_token


async def _confirm(server: Server, session: dict[str, Any], proposed: dict[str, Any]) -> dict[str, Any]:
    status, answer = await tool(
        server.url,
        session["session_token"],
        "confirm_transaction",
        {
            "session_id": session["session_id"],
            "proposal_id": proposed["proposal_id"],
            "version": proposed["version"],
        },
    )
    assert status == 200, answer
    return answer


async def _committed(pool: asyncpg.Pool, user_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT amount, pin_verified FROM transactions WHERE user_id = $1"
            " AND status IN ('processing', 'completed', 'failed') ORDER BY confirmed_at",
            user_id,
        )
    )


async def test_fifteen_concurrent_tool_payments_with_stolen_tokens_commit_only_the_allowance(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """A stolen user token mints fifteen sessions, proposes KES 1,000 in each and confirms all fifteen at
    once through `confirm_transaction`: KES 3,000 go, every other confirmation answers `pin_required`."""
    user = await make_user(balance="50000.00")
    sessions = await asyncio.gather(*(mint(server.url, user.token) for _ in range(15)))
    proposals = [await propose_by_tool(server.url, s, 1000, "Mama") for s in sessions]
    answers = await asyncio.gather(
        *(_confirm(server, s, p) for s, p in zip(sessions, proposals, strict=True))
    )
    outcomes = sorted((a["outcome"], a.get("rejected")) for a in answers)
    assert outcomes == [("asked", "pin_required")] * 12 + [("committed", None)] * 3, outcomes
    for a in answers:
        if a.get("rejected") == "pin_required":
            assert "finish it in the app" in a["say"] and a["asked"] == "pin"
    committed = await _committed(pool, user.user_id)
    assert [r["amount"] for r in committed] == [Decimal("1000.00")] * 3
    fee = await pool.fetchval("SELECT max(fee) FROM transactions WHERE user_id = $1", user.user_id)
    wallet, held = await _wallet(pool, user.user_id)
    assert wallet == Decimal("50000.00") - 3 * (1000 + fee)
    assert held == 12 * (1000 + fee)  # the twelve wait for the keypad, nothing else


async def test_one_stolen_session_token_pays_the_allowance_then_only_the_keypad_pays(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="50000.00", pin="4321")
    session = await mint(server.url, user.token)
    outcomes = []
    for _ in range(15):
        proposed = await propose_by_tool(server.url, session, 1000, "Mama")
        outcomes.append((await _confirm(server, session, proposed)).get("rejected") or "committed")
    assert outcomes == ["committed"] * 3 + ["pin_required"] * 12, outcomes

    async def paid_out() -> bool:
        # Then their receipts are told at the app's greeting, not by a turn between the PIN and its answer.
        return not await pool.fetchval(
            "SELECT count(*) FROM transactions WHERE user_id = $1 AND status = 'processing'", user.user_id
        )

    await poll_until("the three payouts settled", paid_out)
    # The person's app finishes the same proposal (the last one) with the keypad.
    app, hello = await Conv.open(session["ws_url"])
    ask = hello.calls("request_pin")
    assert ask and ask[0]["parameters"]["proposal_id"] == proposed["proposal_id"]
    done = await app.answer(ask[0]["tool_call_id"], "4321")
    assert done.summary["outcome"] == "committed", done.summary
    await app.close()
    committed = await _committed(pool, user.user_id)
    assert [r["pin_verified"] for r in committed] == [False] * 3 + [True]
    # After the right PIN the allowance is whole again: three more, then the PIN again.
    again = []
    for _ in range(4):
        proposed = await propose_by_tool(server.url, session, 1000, "Mama")
        again.append((await _confirm(server, session, proposed)).get("rejected") or "committed")
    assert again == ["committed"] * 3 + ["pin_required"]
    assert len(await _committed(pool, user.user_id)) == 7


async def test_a_locked_user_cannot_pay_100_by_voice_tap_or_tool(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00", pin="4321")
    session = await mint(server.url, user.token)
    app, _ = await Conv.open(session["ws_url"])
    proposed = await app.say("send 100 to mama")  # read back before the lock
    card = proposed.calls("show_proposal")[0]
    for _ in range(5):  # five wrong PINs (the same count every channel shares)
        await check_user_pin(pool, user.user_id, "0000")
    tapped = await app.answer(card["tool_call_id"], "confirm")
    assert tapped.summary["rejected"] == "pin_locked", tapped.summary
    by_voice = await app.say("send 100 to mama")
    assert by_voice.summary["rejected"] == "pin_locked" and not by_voice.calls("show_proposal")
    status, by_tool = await tool(
        server.url,
        session["session_token"],
        "propose_transaction",
        {"session_id": session["session_id"], "type": "send_phone", "amount": 100, "recipient": "Mama"},
    )
    assert status == 200 and by_tool["rejected"] == "pin_locked" and "proposal_id" not in by_tool
    status, told = await tool(
        server.url, session["session_token"], "get_balance", {"session_id": session["session_id"]}
    )
    assert status == 200 and told["balance"] == "5000.00"
    balance = await app.say("what's my balance")
    assert balance.summary["outcome"] == "answered"
    await app.close()
    assert await _committed(pool, user.user_id) == []
    assert await _wallet(pool, user.user_id) == (Decimal("5000.00"), Decimal("0.00"))


# "7392" as a number of its own (not inside a phone number or an id), or said digit by digit, in words.
_TRACE = r"\m7\s*3\s*9\s*2\M|seven\s+three\s+nine\s+two"


async def _traces(pool: asyncpg.Pool) -> list[str]:
    """Every text column of every table of the schema (JSON too) holding the PIN in any form."""
    columns = await pool.fetch(
        """SELECT c.table_name, c.column_name FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
           WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
             AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')"""
    )
    found = []
    for c in columns:
        query = f'SELECT count(*) FROM public."{c["table_name"]}" WHERE "{c["column_name"]}"::text ~* $1'
        if await pool.fetchval(query, _TRACE):
            found.append(f"{c['table_name']}.{c['column_name']}")
    return found


async def test_a_pin_said_aloud_in_the_pin_step_leaves_no_trace(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    assert await _traces(pool) == []
    user = await make_user(balance="9000.00", pin="7392")
    session = await mint(server.url, user.token)
    app, _ = await Conv.open(session["ws_url"])
    await app.say("send 2000 to mama")
    asked = await app.say("yes")
    assert asked.summary["asked"] == "pin"
    for spoken in ("seven three nine two", "pin 7 3 9 2", "7392", "my pin is seven three nine two"):
        turn = await app.say(spoken)
        assert "Type it in the app" in turn.said and turn.summary["outcome"] == "asked", (
            spoken,
            turn.summary,
        )
        assert not turn.calls("show_proposal"), spoken  # not read as an amount or a correction
    status, by_tool = await tool(
        server.url,
        session["session_token"],
        "parse_command",
        {"session_id": session["session_id"], "text": "seven three nine two"},
    )
    assert status == 200 and "Type it in the app" in by_tool["say"]
    pin_card = turn.calls("request_pin")[0]
    done = await app.answer(pin_card["tool_call_id"], "7392")  # typed: the only way it is used
    assert done.summary["outcome"] == "committed"
    await app.close()
    assert await _traces(pool) == []
    # The log is read once it holds the PIN turn's own line (the last turn: every line before it is in too),
    # so the check below is made on the lines of these turns, not on a log that has not caught up.
    pin_turn = f"turn session={session['session_id']} channel=ws input=PinEntry"
    await poll_until("the PIN turn's log line", lambda: pin_turn in server.output(), wait=30)
    assert not re.search(r"\b7\s*3\s*9\s*2\b|seven\s+three\s+nine\s+two", server.output(), re.IGNORECASE)


async def test_the_servers_settings_are_the_ledgers_numbers(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """`ONGEA_NO_PIN_COUNT` and its kin are written into the one row the ledger's SQL reads (`ledger_rules`),
    at start-up: a server of its own database, so the run's shared rules stay as they are."""
    url = await empty_database()
    await migrate(url)
    srv = start_server(
        url, tmp_path / "srv", ONGEA_NO_PIN_COUNT="2", ONGEA_NO_PIN_AMOUNT="500", ONGEA_PIN_THRESHOLD="400"
    )
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        rules = await pool.fetchrow("SELECT pin_threshold, no_pin_count, no_pin_amount FROM ledger_rules")
        assert tuple(rules) == (Decimal("400.00"), 2, Decimal("500.00"))
        made = await create_user(pool, "254711000111", balance=Decimal("5000"), plan="pro", pin="4321")
        await pool.execute(
            "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, 'Mary Wambui', "
            "'254733444555', 'Mama')",
            made.user_id,
        )
        session = await mint(srv.url, mint_user_token(JWT_SECRET, made.user_id, ttl_seconds=600))
        outcomes = []
        for amount in (200, 200, 100, 450):
            proposed = await propose_by_tool(srv.url, session, amount, "Mama")
            outcomes.append((proposed["needs_pin"], (await _confirm(srv, session, proposed)).get("rejected")))
        # 200 + 200 fit KES 500 and 2 payments; the third is past the count; 450 is above the threshold.
        assert outcomes == [(False, None), (False, None), (True, "pin_required"), (True, "pin_required")]
    finally:
        await pool.close()
        assert srv.stop() == 0, srv.output()[-3000:]
