"""Attacks on business accounts (issue 23) that did not break them, kept as guards, on a real `serve` and
PostgreSQL: a spender's daily limit under payments confirmed at once from several voice sessions, a
business wallet paying out to its spender's own M-Pesa (withdraw), an admin of one business reaching into
another's members through its own path, parallel PIN guesses on an approval, a spender's API key, and a
voice session minted as its member is removed."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg

from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.test_business import PIN, _waiting_payment, add, http, make_business, voice_session
from tests.server_conv.wsclient import mint, tool


async def test_a_spenders_daily_limit_holds_under_confirmations_from_five_sessions_at_once(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, spender, "spender", daily_limit="700", approval_amount="5000")
    sessions = [await mint(server.url, spender.token, business_id=business) for _ in range(5)]
    proposals = []
    for s in sessions:
        status, proposed = await tool(
            server.url,
            s["session_token"],
            "propose_transaction",
            {"session_id": s["session_id"], "type": "send_phone", "amount": "300", "recipient": "Mama"},
        )
        assert status == 200 and proposed["outcome"] == "proposed", proposed
        proposals.append(proposed)
    answers = await asyncio.gather(
        *(
            tool(
                server.url,
                s["session_token"],
                "confirm_transaction",
                {"session_id": s["session_id"], "proposal_id": p["proposal_id"], "version": 1},
            )
            for s, p in zip(sessions, proposals, strict=True)
        )
    )
    committed = [a for _, a in answers if a.get("outcome") == "committed"]
    assert len(committed) == 2, answers
    paid = await pool.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM transactions"
        " WHERE user_id = $1 AND status IN ('processing', 'completed')",
        uuid.UUID(business),
    )
    assert paid == Decimal("600.00")
    held = await pool.fetchval("SELECT held_balance FROM profiles WHERE id = $1", uuid.UUID(business))
    assert held == Decimal("0.00")


async def test_a_business_wallet_does_not_withdraw_to_its_spender(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="5000")
    s = await mint(server.url, spender.token, business_id=business)
    for kind in ("withdraw", "bank_to_mpesa"):
        _, answer = await tool(
            server.url,
            s["session_token"],
            "propose_transaction",
            {
                "session_id": s["session_id"],
                "type": kind,
                "amount": "500",
                "agent": "123456",
                "store": "1",
                "bank": "Equity",
            },
        )
        assert answer.get("outcome") != "proposed", (kind, answer)
    count = await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", uuid.UUID(business))
    assert count == 0


async def test_an_admin_of_one_business_cannot_reach_another_through_their_own_path(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner_a, owner_b = await make_user(plan="business"), await make_user(plan="business")
    admin_a = await make_user(plan="free")
    spender_b = await make_user(plan="free")
    a = await make_business(server, pool, owner_a)
    b = await make_business(server, pool, owner_b)
    await add(server, a, owner_a, admin_a, "admin")
    member_b = await add(server, b, owner_b, spender_b, "spender", daily_limit="100", approval_amount="0")
    for method, body in (("PATCH", {"daily_limit": "250000", "approval_amount": "250000"}), ("DELETE", None)):
        status, answer = await http(
            server, method, f"/v1/business/{a}/members/{member_b['id']}", admin_a.token, body
        )
        assert status == 404, (method, answer)
        status, answer = await http(
            server, method, f"/v1/business/{b}/members/{member_b['id']}", admin_a.token, body
        )
        assert status == 404, (method, answer)
    row = await pool.fetchrow(
        "SELECT daily_limit, approval_amount, removed_at FROM business_members WHERE id = $1",
        uuid.UUID(member_b["id"]),
    )
    assert (row["daily_limit"], row["approval_amount"], row["removed_at"]) == (
        Decimal("100.00"),
        Decimal("0.00"),
        None,
    )
    # Nor read B's team, payments or approvals.
    for path in ("", "/members", "/payments", "/approvals"):
        status, _ = await http(server, "GET", f"/v1/business/{b}{path}", admin_a.token)
        assert status == 404, path


async def test_parallel_pin_guesses_on_an_approval_lock_the_approver_and_decide_nothing(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    admin = await make_user(plan="free")  # a thief holding the admin's phone (token), not their PIN
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, admin, "admin")
    await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="100")
    conv, _ = await voice_session(server, spender, business)
    try:
        tx = await _waiting_payment(server, pool, conv, 300)
    finally:
        await conv.close()
    path = f"/v1/business/{business}/approvals/{tx}/approve"
    guesses = [f"{n:04d}" for n in range(1000, 1020) if f"{n:04d}" != PIN]
    replies = await asyncio.gather(*(http(server, "POST", path, admin.token, {"pin": g}) for g in guesses))
    codes = sorted(b["error"]["code"] for _, b in replies)
    assert codes.count("wrong_pin") == 4 and set(codes) == {"wrong_pin", "pin_locked"}, codes
    status, body = await http(server, "POST", path, admin.token, {"pin": PIN})
    assert status == 423 and body["error"]["code"] == "pin_locked", body
    row = await pool.fetchrow("SELECT status, approval_state FROM transactions WHERE id = $1", tx)
    assert (row["status"], row["approval_state"]) == ("pending", "awaiting")


async def test_a_spenders_api_key_reads_only_their_own_payments_and_decides_nothing(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="pro")
    other = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="100")
    await add(server, business, owner, other, "spender", daily_limit="5000", approval_amount="100")
    conv, _ = await voice_session(server, other, business)
    try:
        theirs = await _waiting_payment(server, pool, conv, 300)
    finally:
        await conv.close()
    status, made = await http(
        server, "POST", "/v1/api-keys", spender.token, {"name": "k", "scopes": ["read", "pay"], "pin": PIN}
    )
    assert status == 201, made
    key = made["key"]
    for path in ("/payments", "/approvals"):
        status, body = await http(server, "GET", f"/v1/business/{business}{path}", key)
        assert status == 200 and body["items"] == [], (path, body)
    status, body = await http(server, "GET", f"/v1/business/{business}/members", key)
    assert status == 200 and [m["user_id"] for m in body["items"]] == [str(spender.user_id)], body
    for verb in ("approve", "reject"):
        status, body = await http(
            server, "POST", f"/v1/business/{business}/approvals/{theirs}/{verb}", key, {"pin": PIN}
        )
        assert status == 403 and body["error"]["code"] == "api_key_not_allowed", body
    row = await pool.fetchrow("SELECT status, approval_state FROM transactions WHERE id = $1", theirs)
    assert (row["status"], row["approval_state"]) == ("pending", "awaiting")


async def test_a_session_minted_as_the_member_is_removed_hears_nothing_of_the_business(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The mint checks membership, then the removal ends the member's sessions: a mint racing the removal can
    land in between. Whatever the order, once removed the member's session neither pays nor tells the
    business's balance."""
    owner = await make_user(plan="business")
    business = await make_business(server, pool, owner, "12345")
    for _ in range(4):
        spender = await make_user(plan="free")
        member = await add(
            server, business, owner, spender, "spender", daily_limit="5000", approval_amount="5000"
        )
        minted, removed = await asyncio.gather(
            http(server, "POST", "/v1/sessions", spender.token, {"business_id": business}),
            http(server, "DELETE", f"/v1/business/{business}/members/{member['id']}", owner.token),
        )
        assert removed[0] == 204, removed
        if minted[0] != 201:
            assert minted[0] == 404, minted
            continue
        s = minted[1]
        _, told = await tool(server.url, s["session_token"], "get_balance", {"session_id": s["session_id"]})
        assert "12,345" not in str(told) and "12345" not in str(told), told
        _, proposed = await tool(
            server.url,
            s["session_token"],
            "propose_transaction",
            {"session_id": s["session_id"], "type": "send_phone", "amount": "100", "recipient": "Mama"},
        )
        assert proposed.get("outcome") != "proposed", proposed
    paid = await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", uuid.UUID(business))
    assert paid == 0
