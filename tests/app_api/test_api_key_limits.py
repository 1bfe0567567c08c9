"""An API key's own limits over real HTTP: its rate limit per minute, its daily limit, and its owner's plan
(a key of a user who left the plans with `api_access` stops working at once, and works again on return)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg

from tests.app_api.conftest import Api, MakeApiUser
from tests.app_api.test_api_keys import PIN, _key, _paid, _pay, _payee


async def test_a_key_past_its_rate_limit_is_refused_until_the_next_minute(
    api: Api, make_api_user: MakeApiUser
) -> None:
    user = await make_api_user(plan="pro", pin=PIN)
    key = await _key(api, user, ["read"], rate_limit_per_minute=3)
    answers = [(await api.send("GET", "/v1/me", key))[0] for _ in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    status, _, body = await api.send("GET", "/v1/transactions", key)
    assert status == 429 and "rate_limited" in body
    # Another key of the same user has its own count.
    other = await _key(api, user, ["read"], rate_limit_per_minute=3)
    assert (await api.send("GET", "/v1/me", other))[0] == 200


async def test_a_key_pays_up_to_its_daily_limit_and_no_further(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(balance="5000.00", plan="pro", pin=PIN)
    key = await _key(api, user, ["pay"], pin=PIN, daily_limit="300")
    phone = await _payee(api, user)
    first = await _pay(api, key, str(uuid.uuid4()), phone, "200")
    assert first.status == 201, first.body
    over = await _pay(api, key, str(uuid.uuid4()), phone, "150")
    assert over.status == 403 and over.body["error"]["code"] == "api_key_daily_limit", over.body
    fits = await _pay(api, key, str(uuid.uuid4()), phone, "100")
    assert fits.status == 201, fits.body
    paid = await _paid(pool, user)
    assert sorted(r["amount"] for r in paid) == [Decimal("100.00"), Decimal("200.00")]


async def test_a_key_stops_working_when_its_owner_leaves_the_plan_with_api_access(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(balance="5000.00", plan="pro", pin=PIN)
    read = await _key(api, user, ["read"])
    pay = await _key(api, user, ["pay"], pin=PIN)
    phone = await _payee(api, user)
    assert (await api.send("GET", "/v1/me", read))[0] == 200
    # Down to Free (no api_access), as POST /v1/subscription records it: the subscription in force.
    reply = await api.call("POST", "/v1/subscription", user, json={"plan": "free"})
    assert reply.status in (200, 201), reply.body
    status, _, body = await api.send("GET", "/v1/me", read)
    assert status == 403 and "plan_required" in body
    refused = await _pay(api, pay, str(uuid.uuid4()), phone, "100")
    assert refused.status == 403 and refused.body["error"]["code"] == "plan_required"
    assert await _paid(pool, user) == []
    # The user token itself still works: only the keys depend on the plan.
    assert (await api.call("GET", "/v1/me", user)).status == 200
    # Back on Pro (as Stripe would record it), the same key works again: it was not revoked.
    await pool.execute(
        """INSERT INTO subscriptions (user_id, plan_type, status, monthly_fee, transaction_fee_percentage,
                                      monthly_transaction_limit, current_period_start, current_period_end)
           SELECT $1, id, 'active', monthly_fee, transaction_fee_percentage, monthly_transaction_limit,
                  now(), now() + interval '1 month'
           FROM subscription_plans WHERE id = 'pro'""",
        user.id,
    )
    assert (await api.send("GET", "/v1/me", read))[0] == 200
