"""Holes found by attacking the app API, each kept closed by a test: tokens of users without a profile,
races on defaults and PINs, unbounded growth, echoed input, Stripe subscriptions that become active late."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from voice_server.auth import mint_user_token

from .conftest import JWT_SECRET, Api, MakeApiUser, User
from .test_billing import _post, event, signed, subscription


async def test_a_valid_token_of_a_user_without_profile_is_never_a_500(api: Api, pool: asyncpg.Pool) -> None:
    ghost_id = uuid.uuid4()
    ghost = User(ghost_id, "", mint_user_token(JWT_SECRET, ghost_id, ttl_seconds=60))
    for method, path, body in [
        ("GET", "/v1/me", None),
        ("PATCH", "/v1/me", {"biometric_enabled": True}),
        ("PUT", "/v1/me/pin", {"pin": "7392"}),
        ("POST", "/v1/contacts", {"name": "x", "phone": "0712345678"}),
        ("POST", "/v1/contacts:import", {"contacts": [{"name": "x", "phone": "0712345678"}]}),
        ("POST", "/v1/payment-methods", {"type": "mpesa", "phone": "0712345678"}),
        ("POST", "/v1/subscription", {"plan": "pro"}),
    ]:
        r = await api.call(method, path, ghost, json=body)
        assert (r.status, r.body["error"]["code"]) == (403, "profile_missing"), (method, path, r.body)
    for path in (
        "/v1/contacts",
        "/v1/transactions",
        "/v1/balance-history",
        "/v1/payment-methods",
        "/v1/plans",
    ):
        r = await api.call("GET", path, ghost)
        assert (r.status, r.body["error"]["code"]) == (403, "profile_missing"), (path, r.body)
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", ghost_id) == 0


async def test_explicit_nulls_in_a_contact_patch_change_nothing(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    made = (await api.call("POST", "/v1/contacts", user, json={"name": "Mama", "phone": "0712345678"})).body
    body = {"name": None, "phone": None, "favorite": None, "nickname": None}
    r = await api.call("PATCH", f"/v1/contacts/{made['id']}", user, json=body)
    assert (r.status, r.body["name"], r.body["phone"]) == (200, "Mama", "254712345678")
    r = await api.call("PATCH", f"/v1/contacts/{made['id']}", user, json={"name": ""})
    assert (r.status, r.body["error"]["code"]) == (400, "invalid_text")


async def test_an_echoed_field_name_is_cut_short(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    r = await api.call("PATCH", "/v1/me", user, json={"x" * 20000: 1})
    assert r.status == 400 and len(r.body["error"]["message"]) < 200


async def test_many_defaults_at_once_leave_exactly_one(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user()
    replies = await asyncio.gather(
        *(
            api.call(
                "POST",
                "/v1/payment-methods",
                user,
                json={"type": "mpesa", "phone": f"07120000{i:02d}", "is_default": True},
            )
            for i in range(6)
        )
    )
    assert sorted(r.status for r in replies) == [201] * 6
    assert (
        await pool.fetchval("SELECT count(*) FROM payment_methods WHERE user_id = $1 AND is_default", user.id)
        == 1
    )


async def test_the_same_number_twice_at_once_is_one_contact(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user()
    replies = await asyncio.gather(
        *(
            api.call("POST", "/v1/contacts", user, json={"name": f"M{i}", "phone": "0712345678"})
            for i in range(5)
        )
    )
    assert sorted(r.status for r in replies) == [201] + [409] * 4
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 1


async def test_parallel_pin_guesses_get_five_tries_and_no_more(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(pin="7392")
    # Few at once (the test server is shared), and within the PIN-change rate limit (10 in 10 minutes).
    guesses = [f"{n:04d}" for n in range(1000, 1009)]
    replies = await asyncio.gather(
        *(api.call("PUT", "/v1/me/pin", user, json={"pin": "5820", "current_pin": g}) for g in guesses)
    )
    codes = [r.body["error"]["code"] for r in replies]
    assert codes.count("wrong_pin") == 4 and codes.count("pin_locked") == 5
    assert await pool.fetchval("SELECT pin_failed_attempts FROM profiles WHERE id = $1", user.id) == 5
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "5820", "current_pin": "7392"})
    assert r.status == 423


async def test_growth_is_bounded(api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool) -> None:
    user = await make_api_user()
    for i in range(20):
        r = await api.call(
            "POST", "/v1/payment-methods", user, json={"type": "mpesa", "phone": f"07130000{i:02d}"}
        )
        assert r.status == 201
    r = await api.call("POST", "/v1/payment-methods", user, json={"type": "mpesa", "phone": "0713999999"})
    assert (r.status, r.body["error"]["code"]) == (409, "too_many_methods")
    for start in (0, 5000):
        book = [{"name": f"N{i}", "phone": f"0714{i:06d}"} for i in range(start, start + 5000)]
        assert (await api.call("POST", "/v1/contacts:import", user, json={"contacts": book})).status == 201
    r = await api.call("POST", "/v1/contacts", user, json={"name": "one more", "phone": "0715000000"})
    assert (r.status, r.body["error"]["code"]) == (409, "too_many_contacts")
    r = await api.call(
        "POST", "/v1/contacts:import", user, json={"contacts": [{"name": "x", "phone": "0715000001"}]}
    )
    assert (r.status, r.body["error"]["code"]) == (400, "too_many_contacts")
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 10_000


async def test_a_stripe_subscription_that_becomes_active_later_replaces_the_plan(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(plan="basic")
    now = int(time.time())
    sub_id = "sub_" + uuid.uuid4().hex[:14]
    incomplete = subscription(user, sub_id, "incomplete", "pro", now - 3600, now + 30 * 86400)
    assert (await _post(api, *signed(event("customer.subscription.created", incomplete, now))))[1][
        "outcome"
    ] == "applied"
    assert (await api.call("GET", "/v1/me", user)).body["plan"]["plan"] == "basic"  # not paid yet
    active = subscription(user, sub_id, "active", "pro", now - 3600, now + 30 * 86400)
    assert (await _post(api, *signed(event("customer.subscription.updated", active, now + 1))))[1][
        "outcome"
    ] == "applied"
    me = (await api.call("GET", "/v1/me", user)).body
    assert (me["plan"]["plan"], me["plan"]["managed_by_stripe"]) == ("pro", True)
    statuses = await pool.fetch(
        "SELECT plan_type, status FROM subscriptions WHERE user_id = $1 ORDER BY created_at", user.id
    )
    assert [(s["plan_type"], s["status"]) for s in statuses] == [("basic", "cancelled"), ("pro", "active")]


async def test_a_replayed_event_id_with_another_body_changes_nothing(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(plan="free")
    now = int(time.time())
    first = event(
        "customer.subscription.created",
        subscription(user, "sub_r" + uuid.uuid4().hex[:8], "active", "basic", now, now + 9000),
        now,
    )
    assert (await _post(api, *signed(first)))[1]["outcome"] == "applied"
    second = {
        **first,
        "data": {"object": subscription(user, "sub_other", "active", "business", now, now + 9000)},
    }
    assert (await _post(api, *signed(second)))[1]["outcome"] == "duplicate"
    assert (await api.call("GET", "/v1/me", user)).body["plan"]["plan"] == "basic"
