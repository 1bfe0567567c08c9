"""Plans and subscriptions: `GET /v1/plans`, `POST /v1/subscription`, and Stripe's webhook.

A subscription row decides the fee rate and monthly limit the ledger applies (`ledger_user_terms` in
sql/0003: the active row covering now, the latest started first). Subscriptions are a money table that users
cannot write (0005), so a plan change is made here by the server for the token's user, in one transaction
under the profile's row lock (the lock every ledger operation takes), and is in force for the next proposal.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from ledger.reads import as_user
from voice_server.app_api import queries
from voice_server.app_api.common import answer, read_body, read_model, user_db
from voice_server.app_api.models import PlanList, StripeAck, SubscriptionRequest
from voice_server.appkeys import POOL_KEY, SETTINGS_KEY
from voice_server.auth import profile_missing, request_user
from voice_server.bodies import allow_larger_body
from voice_server.http_errors import ApiError

log = logging.getLogger(__name__)

STRIPE_MAX_BYTES = 512 * 1024
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
# Stripe's subscription statuses -> ours (the founding CHECK allows active, cancelled, expired, past_due).
STRIPE_STATUS = {
    "active": "active",
    "trialing": "active",
    "past_due": "past_due",
    "unpaid": "past_due",
    "incomplete": "past_due",
    "paused": "past_due",
    "canceled": "cancelled",
    "incomplete_expired": "expired",
}


async def end_plans_in_force(
    conn: asyncpg.Connection, user_id: uuid.UUID, keep: uuid.UUID | None = None
) -> None:
    """Ends the user's active subscriptions now (all but `keep`), so that one plan alone is in force."""
    await conn.execute(
        """UPDATE subscriptions
           SET status = 'cancelled', cancel_at = now(),
               current_period_end = greatest(current_period_start, least(current_period_end, now()))
           WHERE user_id = $1 AND id IS DISTINCT FROM $2 AND status = 'active'
             AND current_period_end > now()""",
        user_id,
        keep,
    )


async def list_plans(request: web.Request) -> web.Response:
    async with user_db(request) as conn:
        return answer(PlanList(items=await queries.plans(conn)))


async def change_plan(request: web.Request) -> web.Response:
    user_id = request_user(request)
    body = await read_model(request, SubscriptionRequest)
    pool = request.app[POOL_KEY]
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT id FROM profiles WHERE id = $1 FOR UPDATE", user_id) is None:
            raise profile_missing()
        current = await conn.fetchrow(
            """SELECT id, plan_type, stripe_subscription_id FROM subscriptions
               WHERE user_id = $1 AND status = 'active' AND now() >= current_period_start
                 AND now() < current_period_end
               ORDER BY current_period_start DESC LIMIT 1""",
            user_id,
        )
        changed = current is None or current["plan_type"] != body.plan
        if current is not None and current["stripe_subscription_id"] is not None and changed:
            raise ApiError(409, "managed_by_stripe", "this subscription is billed by Stripe: change it there")
        # Nothing here charges a monthly fee: a paid plan (lower fees, higher limits) is bought through
        # Stripe billing, whose webhook records it. Asking here only keeps it or leaves it for a free one.
        fee = await conn.fetchval("SELECT monthly_fee FROM subscription_plans WHERE id = $1", body.plan)
        if changed and fee is not None and fee > 0:
            raise ApiError(402, "payment_required", f"{body.plan} is a paid plan: subscribe through billing")
        if changed:
            await end_plans_in_force(conn, user_id)
            await conn.execute(
                """INSERT INTO subscriptions (user_id, plan_type, status, monthly_fee,
                       transaction_fee_percentage, monthly_transaction_limit, current_period_start,
                       current_period_end)
                   SELECT $1, id, 'active', monthly_fee, transaction_fee_percentage,
                          monthly_transaction_limit, now(), now() + interval '1 month'
                   FROM subscription_plans WHERE id = $2""",
                user_id,
                body.plan,
            )
    async with as_user(pool, user_id) as conn:
        subscription = await queries.subscription(conn)
    return answer(subscription, 201 if changed else 200)


# --------------------------------------------------------------------------------------------------------
# Stripe
# --------------------------------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**37:
        return datetime.fromtimestamp(value, UTC)
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _period(sub: dict[str, Any], key: str) -> datetime | None:
    """Stripe moved the period onto the subscription's items (API 2025-03-31); read either place."""
    when = _time(sub.get(key))
    if when is None:
        items = _dict(sub.get("items")).get("data")
        if isinstance(items, list) and items:
            when = _time(_dict(items[0]).get(key))
    return when


async def _subscription_event(conn: asyncpg.Connection, kind: str, sub: dict[str, Any], at: datetime) -> str:
    stripe_id = sub.get("id")
    if not isinstance(stripe_id, str) or not stripe_id:
        return "ignored"
    metadata = _dict(sub.get("metadata"))
    status = (
        "cancelled" if kind.endswith(".deleted") else STRIPE_STATUS.get(str(sub.get("status")), "past_due")
    )
    start, end = _period(sub, "current_period_start"), _period(sub, "current_period_end")
    cancel_at = _time(sub.get("cancel_at")) or (_time(sub.get("ended_at")) if status == "cancelled" else None)
    customer = sub.get("customer") if isinstance(sub.get("customer"), str) else None
    plan = metadata.get("plan") if metadata.get("plan") in ("free", "basic", "pro", "business") else None
    row = await conn.fetchrow(
        """SELECT id, user_id, status, stripe_event_at FROM subscriptions WHERE stripe_subscription_id = $1
           ORDER BY created_at DESC LIMIT 1""",
        stripe_id,
    )
    if row is None:
        try:
            user_id = uuid.UUID(str(metadata.get("user_id")))
        except ValueError:
            return "ignored"
        if plan is None:
            return "ignored"
        if await conn.fetchval("SELECT id FROM profiles WHERE id = $1 FOR UPDATE", user_id) is None:
            return "ignored"
        # A subscription first heard of as cancelled (its `deleted` overtook its `created`): its row is kept,
        # cancelled and stamped with this event's time, so the older events still on their way find it and
        # are ignored instead of putting a cancelled paid plan in force.
        if status == "active":  # the Stripe subscription replaces whatever plan was in force
            await end_plans_in_force(conn, user_id)
        await conn.execute(
            """INSERT INTO subscriptions (user_id, plan_type, status, monthly_fee,
                   transaction_fee_percentage, monthly_transaction_limit, stripe_subscription_id,
                   stripe_customer_id, current_period_start, current_period_end, cancel_at, stripe_event_at)
               SELECT $1, id, $3, monthly_fee, transaction_fee_percentage, monthly_transaction_limit, $4, $5,
                      coalesce($6, now()), coalesce($7, now() + interval '1 month'), $8, $9
               FROM subscription_plans WHERE id = $2""",
            user_id,
            plan,
            status,
            stripe_id,
            customer,
            start,
            end,
            cancel_at,
            at,
        )
        return "applied"
    await conn.execute("SELECT id FROM profiles WHERE id = $1 FOR UPDATE", row["user_id"])
    if row["stripe_event_at"] is not None and at < row["stripe_event_at"]:
        return "ignored"  # an older event delivered late: the newer one already said more
    if row["status"] == "cancelled" and status != "cancelled" and at == row["stripe_event_at"]:
        return "ignored"  # (Stripe stamps events to the second: in a tie, the cancellation stands)
    await conn.execute(
        """UPDATE subscriptions
           SET status = $2, current_period_start = coalesce($3, current_period_start),
               current_period_end = coalesce($4, current_period_end), cancel_at = $5,
               stripe_customer_id = coalesce($6, stripe_customer_id), stripe_event_at = $7
           WHERE id = $1""",
        row["id"],
        status,
        start,
        end,
        cancel_at,
        customer,
        at,
    )
    if status == "active":  # this Stripe subscription is the plan in force from now on
        await end_plans_in_force(conn, row["user_id"], keep=row["id"])
    if plan is not None:  # a plan change made in Stripe: its fee and limit from now on
        await conn.execute(
            """UPDATE subscriptions s
               SET plan_type = p.id, monthly_fee = p.monthly_fee,
                   transaction_fee_percentage = p.transaction_fee_percentage,
                   monthly_transaction_limit = p.monthly_transaction_limit
               FROM subscription_plans p WHERE s.id = $1 AND p.id = $2""",
            row["id"],
            plan,
        )
    return "applied"


async def _payment_failed(conn: asyncpg.Connection, invoice: dict[str, Any], at: datetime) -> str:
    stripe_id = invoice.get("subscription")
    if not isinstance(stripe_id, str):  # API 2025-03-31 and later: under parent.subscription_details
        details = _dict(_dict(invoice.get("parent")).get("subscription_details"))
        stripe_id = details.get("subscription")
    if not isinstance(stripe_id, str) or not stripe_id:
        return "ignored"
    row = await conn.fetchrow(
        """SELECT id, user_id, stripe_event_at FROM subscriptions WHERE stripe_subscription_id = $1
           ORDER BY created_at DESC LIMIT 1""",
        stripe_id,
    )
    if row is None:
        return "ignored"
    await conn.execute("SELECT id FROM profiles WHERE id = $1 FOR UPDATE", row["user_id"])
    if row["stripe_event_at"] is not None and at < row["stripe_event_at"]:
        return "ignored"
    await conn.execute(
        """UPDATE subscriptions SET status = 'past_due', stripe_event_at = $2
           WHERE id = $1 AND status IN ('active', 'past_due')""",
        row["id"],
        at,
    )
    return "applied"


async def apply_stripe_event(pool: asyncpg.Pool, event: dict[str, Any]) -> str:
    """Applies one verified event exactly once by its id: `applied`, `duplicate` or `ignored`."""
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(kind, str):
        raise ApiError(400, "invalid_event", "a Stripe event has an id and a type")
    at = _time(event.get("created")) or datetime.now(UTC)
    obj = _dict(_dict(event.get("data")).get("object"))
    async with pool.acquire() as conn, conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO stripe_events (id, type, outcome) VALUES ($1, $2, 'received') "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            event_id[:255],
            kind[:100],
        )
        if first is None:
            return "duplicate"
        if kind in SUBSCRIPTION_EVENTS:
            outcome = await _subscription_event(conn, kind, obj, at)
        elif kind == "invoice.payment_failed":
            outcome = await _payment_failed(conn, obj, at)
        else:
            outcome = "ignored"
        await conn.execute("UPDATE stripe_events SET outcome = $2 WHERE id = $1", event_id[:255], outcome)
    log.info("stripe event %s (%s): %s", event_id, kind, outcome)
    return outcome


async def stripe_webhook(request: web.Request) -> web.Response:
    """Stripe's signature (official `stripe` package) is checked before anything in the body is used."""
    secret = request.app[SETTINGS_KEY].stripe_webhook_secret
    if secret is None:
        raise ApiError(503, "stripe_not_configured", "STRIPE_WEBHOOK_SECRET is not set on this server")
    import stripe  # here, not at the top: importing the SDK takes seconds, and only this route needs it

    raw = await read_body(request)
    signature = request.headers.get("Stripe-Signature", "")
    try:
        stripe.Webhook.construct_event(  # type: ignore[no-untyped-call]
            raw.decode("utf-8"), signature, secret.get_secret_value()
        )
        event = json.loads(raw)
    except stripe.SignatureVerificationError:
        raise ApiError(400, "invalid_signature", "the Stripe-Signature header does not match") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "the body is not a Stripe event") from None
    if not isinstance(event, dict):
        raise ApiError(400, "invalid_json", "the body is not a Stripe event")
    outcome = await apply_stripe_event(request.app[POOL_KEY], event)
    return answer(StripeAck(received=True, outcome=outcome))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/plans", list_plans)
    app.router.add_post("/v1/subscription", change_plan)
    app.router.add_post("/v1/webhooks/stripe", stripe_webhook)
    allow_larger_body(app, "/v1/webhooks/stripe", STRIPE_MAX_BYTES)
