"""Plans, plan changes in force at once, and Stripe's webhook: signed, applied once, in order."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from ledger.models import ProposalRequest
from ledger.service import Ledger

from .conftest import STRIPE_SECRET, Api, MakeApiUser, User


def signed(
    event: dict[str, Any], secret: str = STRIPE_SECRET, at: int | None = None
) -> tuple[str, dict[str, str]]:
    """The body and Stripe-Signature header as Stripe sends them (HMAC-SHA256 of "t.payload")."""
    payload = json.dumps(event)
    t = int(at if at is not None else time.time())
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"}


def event(kind: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": kind,
        "created": created,
        "data": {"object": obj},
    }


def subscription(user: User, sub_id: str, status: str, plan: str, start: int, end: int) -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": "cus_" + user.id.hex[:10],
        "status": status,
        "cancel_at": None,
        "metadata": {"user_id": str(user.id), "plan": plan},
        "items": {"data": [{"current_period_start": start, "current_period_end": end}]},
    }


async def _fee(ledger: Ledger, user: User) -> Decimal:
    p = await ledger.propose(
        user.id, ProposalRequest.build(type="send_phone", amount="1000", phone="0711222333")
    )
    await ledger.cancel(p.id, user.id)
    return p.fee


async def test_plans_are_listed(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    plans = (await api.call("GET", "/v1/plans", user)).body["items"]
    assert [(p["id"], p["monthly_fee"], p["monthly_transaction_limit"]) for p in plans] == [
        ("free", "0.00", 5),
        ("basic", "99.00", 50),
        ("pro", "499.00", None),
        ("business", "1999.00", None),
    ]


async def test_a_plan_change_is_in_force_at_once(
    api: Api, make_api_user: MakeApiUser, ledger: Ledger, pool: asyncpg.Pool
) -> None:
    user = await make_api_user("5000", plan="basic")
    assert await _fee(ledger, user) == Decimal("10.00")
    # A paid plan is bought through Stripe billing; asking here for one is refused and changes nothing.
    r = await api.call("POST", "/v1/subscription", user, json={"plan": "business"})
    assert (r.status, r.body["error"]["code"]) == (402, "payment_required")
    assert await _fee(ledger, user) == Decimal("10.00")
    same = await api.call("POST", "/v1/subscription", user, json={"plan": "basic"})
    assert (same.status, same.body["plan"]) == (200, "basic")
    r = await api.call("POST", "/v1/subscription", user, json={"plan": "free"})
    assert (r.status, r.body["plan"], r.body["status"]) == (201, "free", "active")
    assert r.body["current_period_end"] > r.body["current_period_start"]
    assert await _fee(ledger, user) == Decimal("20.00")
    rows = await pool.fetch(
        "SELECT plan_type, status FROM subscriptions WHERE user_id = $1 ORDER BY created_at", user.id
    )
    assert [(r["plan_type"], r["status"]) for r in rows] == [("basic", "cancelled"), ("free", "active")]
    me = (await api.call("GET", "/v1/me", user)).body
    assert me["plan"]["plan"] == "free" and me["usage"]["limit"] == 5


@pytest.mark.parametrize(
    "body",
    [
        {"plan": "platinum"},
        {"plan": "pro", "monthly_fee": "0"},
        {"plan": "pro", "transaction_fee_percentage": "0"},
        {},
    ],
)
async def test_bad_plan_requests_change_nothing(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool, body: dict[str, str]
) -> None:
    user = await make_api_user(plan="basic")
    r = await api.call("POST", "/v1/subscription", user, json=body)
    assert r.status == 400
    rows = await pool.fetch("SELECT plan_type FROM subscriptions WHERE user_id = $1", user.id)
    assert [r["plan_type"] for r in rows] == ["basic"]


async def _post(api: Api, body: str, headers: dict[str, str]) -> tuple[int, Any]:
    r = await api.call("POST", "/v1/webhooks/stripe", data=body, headers=headers)
    return r.status, r.body


async def _subs(pool: asyncpg.Pool, user: User) -> list[tuple[str, str, str | None]]:
    rows = await pool.fetch(
        "SELECT plan_type, status, stripe_subscription_id FROM subscriptions WHERE user_id = $1"
        " ORDER BY created_at",
        user.id,
    )
    return [(r["plan_type"], r["status"], r["stripe_subscription_id"]) for r in rows]


async def test_stripe_subscription_life(
    api: Api, make_api_user: MakeApiUser, ledger: Ledger, pool: asyncpg.Pool
) -> None:
    user = await make_api_user("5000", plan="free")
    now = int(time.time())
    sub_id = "sub_" + uuid.uuid4().hex[:14]
    created = event(
        "customer.subscription.created",
        subscription(user, sub_id, "active", "pro", now - 60, now + 30 * 86400),
        now,
    )
    assert await _post(api, *signed(created)) == (200, {"received": True, "outcome": "applied"})
    assert await _subs(pool, user) == [("free", "cancelled", None), ("pro", "active", sub_id)]
    assert await _fee(ledger, user) == Decimal("5.00")
    me = (await api.call("GET", "/v1/me", user)).body
    assert me["plan"]["managed_by_stripe"] is True
    r = await api.call("POST", "/v1/subscription", user, json={"plan": "basic"})
    assert (r.status, r.body["error"]["code"]) == (409, "managed_by_stripe")

    # Stripe delivers at least once: the same event again changes nothing.
    assert await _post(api, *signed(created)) == (200, {"received": True, "outcome": "duplicate"})
    assert len(await _subs(pool, user)) == 2

    upgraded = event(
        "customer.subscription.updated",
        subscription(user, sub_id, "active", "business", now - 60, now + 30 * 86400),
        now + 10,
    )
    assert (await _post(api, *signed(upgraded)))[1]["outcome"] == "applied"
    assert await _fee(ledger, user) == Decimal("3.00")

    failed = event(
        "invoice.payment_failed", {"id": "in_1", "object": "invoice", "subscription": sub_id}, now + 20
    )
    assert (await _post(api, *signed(failed)))[1]["outcome"] == "applied"
    assert (await _subs(pool, user))[-1] == ("business", "past_due", sub_id)
    assert await _fee(ledger, user) == Decimal("20.00")  # not active: free terms until paid

    # An older "active" update delivered late does not undo the newer payment failure.
    stale = event(
        "customer.subscription.updated",
        subscription(user, sub_id, "active", "business", now - 60, now + 86400),
        now + 5,
    )
    assert (await _post(api, *signed(stale)))[1]["outcome"] == "ignored"
    assert (await _subs(pool, user))[-1][1] == "past_due"

    recovered = event(
        "customer.subscription.updated",
        subscription(user, sub_id, "active", "business", now - 60, now + 30 * 86400),
        now + 30,
    )
    assert (await _post(api, *signed(recovered)))[1]["outcome"] == "applied"
    assert (await _subs(pool, user))[-1][1] == "active"

    deleted = event(
        "customer.subscription.deleted",
        {
            **subscription(user, sub_id, "canceled", "business", now - 60, now + 30 * 86400),
            "ended_at": now + 40,
        },
        now + 40,
    )
    assert (await _post(api, *signed(deleted)))[1]["outcome"] == "applied"
    assert (await _subs(pool, user))[-1][1] == "cancelled"
    assert await _fee(ledger, user) == Decimal("20.00")
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM stripe_events WHERE id = ANY($1)",
            [created["id"], upgraded["id"], failed["id"], stale["id"], recovered["id"], deleted["id"]],
        )
        == 6
    )


async def test_bad_signatures_change_nothing(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(plan="free")
    now = int(time.time())
    forged = event(
        "customer.subscription.created",
        subscription(user, "sub_forged", "active", "business", now, now + 86400),
        now,
    )
    body, headers = signed(forged, secret="whsec_someone_else")
    assert (await _post(api, body, headers))[0] == 400
    body, headers = signed(forged, at=now - 3600)  # a replay of an old signature
    status, answer = await _post(api, body, headers)
    assert (status, answer["error"]["code"]) == (400, "invalid_signature")
    body, headers = signed(forged)
    tampered = body.replace('"business"', '"pro"')
    assert (await _post(api, tampered, headers))[0] == 400
    assert (await _post(api, body, {"Content-Type": "application/json"}))[0] == 400
    assert (await _post(api, "not json", {"Stripe-Signature": "t=1,v1=00"}))[0] == 400
    assert await _subs(pool, user) == [("free", "active", None)]
    assert await pool.fetchval("SELECT count(*) FROM stripe_events WHERE id = $1", forged["id"]) == 0


async def test_events_for_no_known_user_are_acknowledged_and_ignored(api: Api, pool: asyncpg.Pool) -> None:
    now = int(time.time())
    ghost = User(uuid.uuid4(), "254700000000", "")
    for e in [
        event(
            "customer.subscription.created",
            subscription(ghost, "sub_ghost", "active", "pro", now, now + 9),
            now,
        ),
        event("invoice.payment_failed", {"id": "in_x", "subscription": "sub_nobody"}, now),
        event("charge.succeeded", {"id": "ch_1"}, now),
    ]:
        status, answer = await _post(api, *signed(e))
        assert (status, answer["outcome"]) == (200, "ignored")
    assert (
        await pool.fetchval("SELECT count(*) FROM subscriptions WHERE stripe_subscription_id = 'sub_ghost'")
        == 0
    )
