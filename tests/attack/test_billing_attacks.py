"""Plans cost money: a paid plan (lower fees, higher limits) must not be had by asking for it."""

from __future__ import annotations

from typing import Any

import asyncpg

from .conftest import Client


async def test_a_paid_plan_is_not_free_for_the_asking(
    client: Client, make_user: Any, db: asyncpg.Pool
) -> None:
    user = await make_user("5000", plan="free")
    for plan in ("basic", "pro", "business"):
        r = await client.call("POST", "/v1/subscription", user, json_body={"plan": plan})
        assert (r.status, r.body["error"]["code"]) == (402, "payment_required"), r.body
    me = (await client.call("GET", "/v1/me", user)).body
    assert (me["plan"]["plan"], me["plan"]["transaction_fee_percentage"]) == ("free", "0.0200")
    assert me["wallet_balance"] == "5000.00"
    rows = await db.fetch("SELECT plan_type, status FROM subscriptions WHERE user_id = $1", user.id)
    assert [(r["plan_type"], r["status"]) for r in rows] == [("free", "active")]


async def test_a_paid_plan_can_still_be_left_for_the_free_one(client: Client, make_user: Any) -> None:
    user = await make_user("5000", plan="basic")
    same = await client.call("POST", "/v1/subscription", user, json_body={"plan": "basic"})
    assert (same.status, same.body["plan"]) == (200, "basic")
    r = await client.call("POST", "/v1/subscription", user, json_body={"plan": "free"})
    assert (r.status, r.body["plan"]) == (201, "free")
    assert (await client.call("GET", "/v1/me", user)).body["usage"]["limit"] == 5
