"""Stripe delivers events in any order, against a real `ongea-pesa serve`: a `customer.subscription.deleted`
that arrives before its `created` (and an older `updated` after it) is remembered, so the older events cannot
bring the cancelled paid plan back."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg

from tests.app_api.test_billing import event, signed, subscription

from .conftest import STRIPE_SECRET, Client


async def _post(client: Client, body: str, headers: dict[str, str]) -> str:
    r = await client.call("POST", "/v1/webhooks/stripe", data=body, headers=headers)
    assert r.status == 200, r.body
    return str(r.body["outcome"])


async def test_a_deletion_that_overtakes_its_creation_keeps_the_plan_cancelled(
    client: Client, make_user: Any, db: asyncpg.Pool
) -> None:
    user = await make_user(plan="free")
    now = int(time.time())
    sub_id = "sub_" + uuid.uuid4().hex[:14]
    period = (now - 60, now + 30 * 86400)
    deleted = event(
        "customer.subscription.deleted", subscription(user, sub_id, "canceled", "business", *period), now + 20
    )
    created = event(
        "customer.subscription.created", subscription(user, sub_id, "active", "business", *period), now
    )
    updated = event(
        "customer.subscription.updated", subscription(user, sub_id, "active", "business", *period), now + 10
    )
    assert await _post(client, *signed(deleted, STRIPE_SECRET)) == "applied"  # remembered
    assert await _post(client, *signed(created, STRIPE_SECRET)) == "ignored"
    assert await _post(client, *signed(updated, STRIPE_SECRET)) == "ignored"
    active = await db.fetch(
        """SELECT plan_type FROM subscriptions WHERE user_id = $1 AND status = 'active'
           AND now() >= current_period_start AND now() < current_period_end""",
        user.id,
    )
    assert [r["plan_type"] for r in active] == ["free"]
    me = (await client.call("GET", "/v1/me", user)).body
    assert (me["plan"]["plan"], me["plan"]["status"]) == ("free", "active"), me["plan"]
    # A same-second update cannot undo the cancellation either.
    tie = event(
        "customer.subscription.updated", subscription(user, sub_id, "active", "business", *period), now + 20
    )
    assert await _post(client, *signed(tie, STRIPE_SECRET)) == "ignored"
