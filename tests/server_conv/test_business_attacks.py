"""Business accounts attacked over real HTTP on a real `serve`, as an outsider and as a disgruntled member
would: each hole tried is a refusal that changes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from tests.server_conv.conftest import MakeUser, Server
from tests.server_conv.test_business import (
    NAME,
    PIN,
    _waiting_payment,
    add,
    http,
    make_business,
    next_receipt,
    voice_session,
    wallet,
)


async def test_a_spender_cannot_approve_their_own_payment_even_after_being_made_admin(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    member = await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="100")
    conv, _ = await voice_session(server, spender, business)
    try:
        tx = await _waiting_payment(server, pool, conv, 300)
    finally:
        await conv.close()
    path = f"/v1/business/{business}/approvals/{tx}/approve"
    status, body = await http(server, "POST", path, spender.token, {"pin": PIN})
    assert status == 403 and body["error"]["code"] == "forbidden_role"
    # Raising their own limits, or their role, is refused.
    own = f"/v1/business/{business}/members/{member['id']}"
    status, body = await http(server, "PATCH", own, spender.token, {"approval_amount": "250000"})
    assert status == 403, body
    # Promoted by the owner, they still cannot approve what they made.
    status, body = await http(server, "PATCH", own, owner.token, {"role": "admin"})
    assert status == 200 and body["role"] == "admin"
    status, body = await http(server, "POST", path, spender.token, {"pin": PIN})
    assert status == 403 and body["error"]["code"] == "own_payment"
    # Nor change their own row as an admin (their limits, back to spender with a bigger allowance).
    status, body = await http(
        server, "PATCH", own, spender.token, {"role": "spender", "daily_limit": "250000"}
    )
    assert status == 403 and body["error"]["code"] == "forbidden_role"
    row = await pool.fetchrow("SELECT approval_state, status FROM transactions WHERE id = $1", tx)
    assert (row["approval_state"], row["status"]) == ("awaiting", "pending")


async def test_a_removed_admin_cannot_approve_and_an_admin_cannot_crown_or_remove(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    admin = await make_user(plan="free")
    spender = await make_user(plan="free")
    outsider = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    admin_row = await add(server, business, owner, admin, "admin")
    await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="100")
    owner_row = next(
        m
        for m in (await http(server, "GET", f"/v1/business/{business}/members", owner.token))[1]["items"]
        if m["role"] == "owner"
    )
    # An admin makes no admin, does not remove the owner.
    status, body = await http(
        server,
        "POST",
        f"/v1/business/{business}/members",
        admin.token,
        {"phone": outsider.phone, "role": "admin"},
    )
    assert status == 403 and body["error"]["code"] == "forbidden_role"
    status, body = await http(
        server, "DELETE", f"/v1/business/{business}/members/{owner_row['id']}", admin.token
    )
    assert status == 403
    conv, _ = await voice_session(server, spender, business)
    try:
        tx = await _waiting_payment(server, pool, conv, 300)
    finally:
        await conv.close()
    status, _ = await http(
        server, "DELETE", f"/v1/business/{business}/members/{admin_row['id']}", owner.token
    )
    assert status == 204
    # Removed: their approval, their reads, their invitations are refused as a stranger's.
    path = f"/v1/business/{business}/approvals/{tx}/approve"
    status, body = await http(server, "POST", path, admin.token, {"pin": PIN})
    assert status == 404, body
    for method, where, payload in (
        ("GET", "", None),
        ("GET", "/approvals", None),
        ("GET", "/members", None),
        ("POST", "/members", {"phone": outsider.phone, "role": "viewer"}),
    ):
        status, body = await http(server, method, f"/v1/business/{business}{where}", admin.token, payload)
        assert status == 404, (where, body)
    row = await pool.fetchrow("SELECT approval_state, status FROM transactions WHERE id = $1", tx)
    assert (row["approval_state"], row["status"]) == ("awaiting", "pending")


async def test_an_outsider_forging_business_ids_learns_and_changes_nothing(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner_a = await make_user(plan="business")
    owner_b = await make_user(plan="business")
    spender_b = await make_user(plan="free")
    a = await make_business(server, pool, owner_a)
    b = await make_business(server, pool, owner_b)
    await add(server, b, owner_b, spender_b, "spender", daily_limit="5000", approval_amount="100")
    conv, _ = await voice_session(server, spender_b, b)
    try:
        tx_b = await _waiting_payment(server, pool, conv, 300)
    finally:
        await conv.close()
    before = await wallet(pool, b)
    # The owner of A names B (or B's payment under A's path) everywhere, and a wallet that is not a business.
    for business in (b, str(owner_b.user_id), str(uuid.uuid4()), "not-a-uuid"):
        status, body = await http(server, "POST", "/v1/sessions", owner_a.token, {"business_id": business})
        assert status in (400, 404), (business, body)
        for method, where, payload in (
            ("GET", "", None),
            ("GET", "/payments", None),
            ("GET", "/members", None),
            ("POST", "/members", {"phone": owner_a.phone, "role": "admin"}),
            ("POST", f"/approvals/{tx_b}/approve", {"pin": PIN}),
            ("POST", f"/approvals/{tx_b}/reject", {"pin": PIN}),
        ):
            status, body = await http(
                server, method, f"/v1/business/{business}{where}", owner_a.token, payload
            )
            assert status == 404, (business, where, body)
    status, body = await http(
        server, "POST", f"/v1/business/{a}/approvals/{tx_b}/approve", owner_a.token, {"pin": PIN}
    )
    assert status == 404, body
    assert await wallet(pool, b) == before
    row = await pool.fetchrow("SELECT approval_state FROM transactions WHERE id = $1", tx_b)
    assert row["approval_state"] == "awaiting"
    # A business wallet is nobody's to sign in as or to pay from directly: its id as a user names no one.
    status, body = await http(server, "GET", "/v1/business", owner_a.token)
    assert [i["id"] for i in body["items"]] == [a]


async def test_without_the_business_plan_there_is_no_team(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    pro = await make_user(plan="pro")
    status, body = await http(server, "POST", "/v1/business", pro.token, {"display_name": "Kiosk"})
    assert status == 403 and body["error"]["code"] == "plan_required"
    # An owner who leaves the Business plan: the team can no longer pay or be managed.
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="5000")
    await pool.execute("UPDATE subscriptions SET status = 'cancelled' WHERE user_id = $1", owner.user_id)
    conv, _ = await voice_session(server, spender, business)
    try:
        turn = await conv.say("send 100 to Mama")
        assert turn.summary["rejected"] == "plan_required", turn.said
    finally:
        await conv.close()
    status, body = await http(
        server,
        "POST",
        f"/v1/business/{business}/members",
        owner.token,
        {"phone": pro.phone, "role": "viewer"},
    )
    assert status == 403 and body["error"]["code"] == "plan_required"
    assert (await wallet(pool, business)) == (Decimal("20000.00"), Decimal("0.00"))


async def test_a_rejected_payment_is_told_to_its_spender_and_moves_no_money(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    owner = await make_user(plan="business")
    spender = await make_user(plan="free")
    business = await make_business(server, pool, owner)
    await add(server, business, owner, spender, "spender", daily_limit="5000", approval_amount="100")
    conv, _ = await voice_session(server, spender, business)
    try:
        tx = await _waiting_payment(server, pool, conv, 300)
        path = f"/v1/business/{business}/approvals/{tx}/reject"
        status, body = await http(server, "POST", path, owner.token, {"pin": PIN})
        assert status == 200 and body["outcome"] == "rejected", body
        receipt = await next_receipt(conv)
        assert receipt["status"] == "rejected" and receipt["transaction_id"] == str(tx), receipt
        assert receipt["text"] == f"{NAME}: KES 300 to Mary Wambui was not approved, so nothing was sent.", (
            receipt
        )
    finally:
        await conv.close()
    assert await wallet(pool, business) == (Decimal("20000.00"), Decimal("0.00"))
    # Approving it afterwards (a replay of a stale screen) changes nothing.
    status, body = await http(
        server, "POST", f"/v1/business/{business}/approvals/{tx}/approve", owner.token, {"pin": PIN}
    )
    assert status == 409 and body["error"]["code"] == "already_decided"
