"""Business accounts (issue 23) against a real `serve` and PostgreSQL, as a team uses them: an owner on the
Business plan makes the wallet and invites people by phone; a spender pays from it by voice within a daily
limit, and above their approval amount the payment waits for an owner or admin; a viewer only reads; a
removed member loses their open WebSocket and their key at once."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
import pytest
import websockets

from ledger.invariants import check_invariants
from ledger.service import Ledger
from tests.server_conv.conftest import MakeUser, Server, User
from tests.server_conv.wsclient import Conv, Turn, mint

PIN = "4321"  # make_user's
NAME = "Mama Mboga Supplies"


async def http(
    server: Server, method: str, path: str, token: str | None, body: Any = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s:
        async with s.request(method, server.url + path, json=body, headers=headers) as r:
            text = await r.text()
            return r.status, (await r.json(content_type=None)) if text else None


async def fund(pool: asyncpg.Pool, wallet: uuid.UUID, amount: str) -> None:
    """Money into the business wallet as it arrives in production: an M-Pesa top-up, credited once."""
    ledger = Ledger(pool)
    checkout = "ws_CO_" + secrets.token_hex(8)
    await ledger.record_topup_request(wallet, Decimal(amount), "254700000001", checkout, "m-1")
    outcome = await ledger.credit_topup(
        checkout, success=True, amount=Decimal(amount), receipt="RB" + secrets.token_hex(4).upper()
    )
    assert outcome == "credited"


async def make_business(server: Server, pool: asyncpg.Pool, owner: User, balance: str = "20000") -> str:
    status, body = await http(server, "POST", "/v1/business", owner.token, {"display_name": NAME})
    assert status == 201, body
    await fund(pool, uuid.UUID(body["id"]), balance)
    return str(body["id"])


async def add(server: Server, business: str, by: User, who: User, role: str, **limits: str) -> dict[str, Any]:
    status, body = await http(
        server,
        "POST",
        f"/v1/business/{business}/members",
        by.token,
        {"phone": who.phone, "role": role, **limits},
    )
    assert status == 201, body
    return dict(body)


async def voice_session(server: Server, member: User, business: str) -> tuple[Conv, dict[str, Any]]:
    session = await mint(server.url, member.token, business_id=business)
    conv, _ = await Conv.open(session["ws_url"])
    return conv, session


async def wallet(pool: asyncpg.Pool, wallet_id: str) -> tuple[Decimal, Decimal]:
    row = await pool.fetchrow(
        "SELECT wallet_balance, held_balance FROM profiles WHERE id = $1", uuid.UUID(wallet_id)
    )
    assert row is not None
    return row["wallet_balance"], row["held_balance"]


async def _answer_to(conv: Conv, turn: Turn) -> Turn:
    """The turn answering what was sent: receipts the server tells meanwhile (a payout of an earlier round
    settling: a turn of their own) are skipped."""
    while turn.summary["outcome"] in ("receipt", "ignored"):
        turn = await conv.until_turn_end()
    return turn


async def pay_by_voice(conv: Conv, text: str, *, pin: str | None = None) -> dict[str, Any]:
    """Says the payment, taps Confirm on its card (and types the PIN when asked): the last turn's summary."""
    turn = await _answer_to(conv, await conv.say(text))
    cards = turn.calls("show_proposal")
    if not cards:
        return turn.summary
    turn = await _answer_to(conv, await conv.answer(cards[0]["tool_call_id"], "confirm"))
    keypads = turn.calls("request_pin")
    if keypads and pin is not None:
        turn = await _answer_to(conv, await conv.answer(keypads[0]["tool_call_id"], pin))
    return turn.summary | {"said": turn.said}


async def test_a_spender_pays_from_the_business_by_voice_and_is_refused_over_their_daily_limit(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, spender, "spender", daily_limit="1000", approval_amount="900")
    conv, session = await voice_session(server, spender, business)
    assert session["wallet"] == {
        "id": business,
        "business": True,
        "name": NAME,
        "colour": "#1b5e20",
        "role": "spender",
    }
    try:
        turn = await conv.say("send 600 to Mama")
        card = turn.calls("show_proposal")[0]
        assert "From Mama Mboga Supplies" in turn.said and card["parameters"]["wallet_name"] == NAME
        turn = await conv.answer(card["tool_call_id"], "confirm")
        assert turn.summary["outcome"] == "committed", turn.said
        # The business wallet paid, on the owner's Business plan (0.3 %), and the payment names its maker.
        row = await pool.fetchrow(
            "SELECT user_id, made_by, approved_by, fee, status FROM transactions WHERE made_by = $1",
            spender.user_id,
        )
        assert row["user_id"] == uuid.UUID(business) and row["approved_by"] is None
        assert row["fee"] == Decimal("1.80") and row["status"] in ("processing", "completed")
        spender_wallet = await pool.fetchval(
            "SELECT wallet_balance FROM profiles WHERE id = $1", spender.user_id
        )
        assert spender_wallet == Decimal("10000.00")
        # 600 + 500 is over the spender's KES 1,000 a day: refused before read-back, nothing held.
        before = await wallet(pool, business)
        summary = await pay_by_voice(conv, "send 500 to Mama")
        assert summary["outcome"] == "rejected" and summary["rejected"] == "spender_daily_limit", summary
        assert await wallet(pool, business) == before
        # 400 still fits.
        summary = await pay_by_voice(conv, "send 400 to Mama")
        assert summary["outcome"] == "committed", summary
    finally:
        await conv.close()
    assert await check_invariants(pool, [uuid.UUID(business), spender.user_id]) == []


async def test_a_viewer_cannot_pay_but_hears_the_business_balance(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    viewer = await make_user(plan="free")
    business = await make_business(server, pool, owner, "7000")
    await add(server, business, owner, viewer, "viewer")
    conv, _ = await voice_session(server, viewer, business)
    try:
        summary = await pay_by_voice(conv, "send 100 to Mama")
        assert summary["rejected"] == "viewer_cannot_pay", summary
        turn = await conv.say("what is my balance")
        assert "7,000" in turn.said, turn.said
    finally:
        await conv.close()
    count = await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", uuid.UUID(business))
    assert count == 0
    status, body = await http(server, "GET", f"/v1/business/{business}", viewer.token)
    assert status == 200 and body["role"] == "viewer" and body["wallet_balance"] == "7000.00"


async def next_receipt(conv: Conv, wait: float = 30) -> dict[str, Any]:
    """The next receipt card the server shows on this conversation (what the person sees and hears)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        event = await conv.recv(max(deadline - asyncio.get_running_loop().time(), 0.001))
        call = event.get("client_tool_call") or {}
        if call.get("tool_name") == "show_receipt" and "text" in call.get("parameters", {}):
            return dict(call["parameters"])


async def _waiting_payment(server: Server, pool: asyncpg.Pool, conv: Conv, amount: int = 700) -> uuid.UUID:
    summary = await pay_by_voice(conv, f"send {amount} to Mama", pin=PIN)
    assert summary["outcome"] == "committed" and "approval" in summary["said"], summary
    tx = uuid.UUID(summary["committed"]["transaction_id"])
    row = await pool.fetchrow("SELECT status, approval_state FROM transactions WHERE id = $1", tx)
    assert (row["status"], row["approval_state"]) == ("pending", "awaiting")
    return tx


async def test_a_payment_above_the_approval_amount_waits_and_is_approved_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    admin = await make_user(plan="free")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, admin, "admin")
    await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="500")
    conv, _ = await voice_session(server, spender, business)
    try:
        tx = await _waiting_payment(server, pool, conv)
        wallet_before, held = await wallet(pool, business)
        assert wallet_before == Decimal("20000.00") and held == Decimal("702.10")
        # The spender sees it waiting; cannot approve it (their role), and a wrong PIN approves nothing.
        status, body = await http(server, "GET", f"/v1/business/{business}/approvals", spender.token)
        assert status == 200 and [i["id"] for i in body["items"]] == [str(tx)]
        path = f"/v1/business/{business}/approvals/{tx}/approve"
        status, body = await http(server, "POST", path, spender.token, {"pin": PIN})
        assert status == 403 and body["error"]["code"] == "forbidden_role"
        status, body = await http(server, "POST", path, admin.token, {"pin": "9999"})
        assert status == 403 and body["error"]["code"] == "wrong_pin"
        status, body = await http(server, "POST", path, admin.token, {"pin": PIN})
        assert status == 200 and body["outcome"] == "approved", body
        # Replayed: decided already, nothing moves twice.
        status, again = await http(server, "POST", path, owner.token, {"pin": PIN})
        assert status == 409 and again["error"]["code"] == "already_decided"
        row = await pool.fetchrow(
            "SELECT made_by, approved_by, approval_state FROM transactions WHERE id = $1", tx
        )
        assert (row["made_by"], row["approved_by"], row["approval_state"]) == (
            spender.user_id,
            admin.user_id,
            "approved",
        )
        debits = await pool.fetchval(
            "SELECT count(*) FROM balance_history WHERE transaction_id = $1 AND reason = 'debit'", tx
        )
        assert debits == 1
        # The spender hears how it ended, like a receipt, on their open conversation, once the payout settles.
        receipt = await next_receipt(conv)
        assert receipt["transaction_id"] == str(tx) and receipt["status"] == "completed", receipt
        assert receipt["text"].startswith(NAME + ": Done: KES 700"), receipt
        told = await pool.fetchrow(
            "SELECT user_id, told_at FROM payout_receipts WHERE transaction_id = $1", tx
        )
        assert told["user_id"] == spender.user_id and told["told_at"] is not None
    finally:
        await conv.close()
    assert await check_invariants(pool, [uuid.UUID(business)]) == []


async def test_an_approval_racing_its_rejection_and_its_expiry_is_decided_exactly_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    admin = await make_user(plan="free")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner, "50000")
    await add(server, business, owner, admin, "admin")
    await add(server, business, owner, spender, "spender", daily_limit="50000", approval_amount="100")
    conv, _ = await voice_session(server, spender, business)
    outcomes: list[str] = []
    try:
        # The 24 hours run out after `left` seconds, while the admin approves, the owner rejects and the
        # sweeper sweeps, all at once: soon enough for the expiry to win some rounds, late for others.
        for left in (0.05, 0.5, 1.0, 1.5, 2.5, 4.0):
            tx = await _waiting_payment(server, pool, conv, 300)
            await pool.execute(
                "UPDATE transactions SET expires_at = now() + make_interval(secs => $2) WHERE id = $1",
                tx,
                left,
            )
            base = f"/v1/business/{business}/approvals/{tx}"

            async def sweep(left: float = left) -> tuple[int, Any]:
                await asyncio.sleep(left)
                return 200, {"swept": await pool.fetchval("SELECT sweep_expire_proposals(500)")}

            results = await asyncio.gather(
                http(server, "POST", base + "/approve", admin.token, {"pin": PIN}),
                http(server, "POST", base + "/reject", owner.token, {"pin": PIN}),
                sweep(),
            )
            decided = [b["outcome"] for s, b in results[:2] if s == 200 and b["outcome"] != "expired"]
            assert all(s in (200, 409) for s, _ in results[:2]), results
            row = await pool.fetchrow("SELECT status, approval_state FROM transactions WHERE id = $1", tx)
            if row["approval_state"] == "awaiting":  # nobody got in before the expiry: the next sweep does
                await asyncio.sleep(left)
                await pool.fetchval("SELECT sweep_expire_proposals(500)")
                row = await pool.fetchrow("SELECT status, approval_state FROM transactions WHERE id = $1", tx)
            outcomes.append(row["approval_state"])
            assert len(decided) <= 1, results
            if row["approval_state"] == "approved":
                assert decided == ["approved"] and row["status"] in ("processing", "completed")
            elif row["approval_state"] == "rejected":
                assert decided == ["rejected"] and row["status"] == "cancelled"
            else:
                assert row["approval_state"] == "expired" and row["status"] == "cancelled" and decided == []
            moves = await pool.fetchval(
                "SELECT count(*) FROM balance_history WHERE transaction_id = $1 AND reason = 'debit'", tx
            )
            assert moves == (1 if row["approval_state"] == "approved" else 0)
    finally:
        await conv.close()
    assert set(outcomes) <= {"approved", "rejected", "expired"}
    _, held = await wallet(pool, business)
    assert held == Decimal("0.00")
    assert await check_invariants(pool, [uuid.UUID(business)]) == []


async def test_a_removed_member_loses_their_open_websocket_their_key_and_their_waiting_payment_at_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="pro")  # a Pro user, with API keys of their own
    business = await make_business(server, pool, owner)
    member = await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="100")
    status, made = await http(
        server, "POST", "/v1/api-keys", spender.token, {"name": "till", "scopes": ["read"]}
    )
    assert status == 201, made
    key = made["key"]
    status, _ = await http(server, "GET", f"/v1/business/{business}/payments", key)
    assert status == 200
    conv, session = await voice_session(server, spender, business)
    try:
        tx = await _waiting_payment(server, pool, conv, 300)
        status, _ = await http(
            server, "DELETE", f"/v1/business/{business}/members/{member['id']}", owner.token
        )
        assert status == 204
        # The open WebSocket is closed by the server (its session ended), within the session watch's beat.
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(20):
                await conv.say("what is my balance")
                await asyncio.sleep(0.5)
    finally:
        await conv.close()
    status, body = await http(server, "GET", f"/v1/business/{business}/payments", key)
    assert status == 404, body
    status, body = await http(server, "POST", "/v1/sessions", spender.token, {"business_id": business})
    assert status == 404, body
    row = await pool.fetchrow("SELECT status, approval_state FROM transactions WHERE id = $1", tx)
    assert (row["status"], row["approval_state"]) == ("cancelled", "cancelled")
    assert (await wallet(pool, business))[1] == Decimal("0.00")
    ended = await pool.fetchval(
        "SELECT status FROM voice_sessions WHERE session_id = $1", session["session_id"]
    )
    assert ended == "ended"


async def test_the_owner_tops_up_the_business_wallet_from_m_pesa_and_a_spender_cannot(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner, "100")
    await add(server, business, owner, spender, "spender", daily_limit="1000", approval_amount="1000")
    status, body = await http(
        server, "POST", "/v1/topups", spender.token, {"amount": 500, "business_id": business}
    )
    assert status == 404, body
    status, body = await http(
        server, "POST", "/v1/topups", owner.token, {"amount": 500, "business_id": business}
    )
    assert status == 201, body
    assert body["phone"] == owner.phone  # the STK push goes to the owner's M-Pesa number
    for _ in range(100):  # the simulator approves it a moment later, as the owner typing their M-Pesa PIN
        if (await wallet(pool, business))[0] == Decimal("600.00"):
            break
        await asyncio.sleep(0.1)
    assert await wallet(pool, business) == (Decimal("600.00"), Decimal("0.00"))
    owner_wallet = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", owner.user_id)
    assert owner_wallet == Decimal("10000.00")
    # The owner follows it as any top-up (before: 404, the row is the business's); the spender, who cannot
    # top up, and a stranger get the 404 of an id that does not exist.
    topup = f"/v1/topups/{body['topup_id']}"
    status, seen = await http(server, "GET", topup, owner.token)
    assert (status, seen["status"], seen["amount"]) == (200, "completed", "500.00"), seen
    stranger = await make_user(plan="business")
    for who in (spender, stranger):
        status, seen = await http(server, "GET", topup, who.token)
        assert (status, seen["error"]["code"]) == (404, "not_found"), seen
