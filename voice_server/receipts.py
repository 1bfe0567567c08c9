"""Receipts that arrive: the payouts M-Pesa settled that the person has not been told of yet, fed to the
dialogue as `PayoutSettled` inside a turn (a greeting, or the tick a live conversation gets when the feed
sees its payout settle), and marked told in the same database transaction, so each is told once.

Whether it is spoken is the plan's (`plan_features` in sql/0023), asked of the database; a greeting tells
it on every plan."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import cast

import asyncpg

from intents.models import recipient_of
from voice_server.dialogue import machine
from voice_server.dialogue.events import PayoutSettled, Tick, UserEvent
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import Action, DialogueState, Show, World
from voice_server.events_feed import AppEvent, EventFeed

# How long an untold receipt waits for a conversation; older ones are in the history only.
TELL_WITHIN = "7 days"
MOST_AT_ONCE = 5

RECEIPT_COLUMNS = """
    t.id AS transaction_id, t.type, t.status, t.amount, t.fee,
    coalesce(t.mpesa_transaction_id, '') AS reference,
    t.phone, t.till, t.paybill, t.account, t.agent, t.store, t.bank_code,
    (SELECT c.name FROM contacts c
     WHERE c.user_id = coalesce(t.made_by, t.user_id) AND t.phone <> '' AND c.phone_number = t.phone
     ORDER BY c.favorite DESC NULLS LAST, c.name LIMIT 1) AS contact,
    coalesce((SELECT b.new_balance FROM balance_history b WHERE b.transaction_id = t.id
              ORDER BY b.seq DESC LIMIT 1),
             (SELECT p.wallet_balance FROM profiles p WHERE p.id = t.user_id)) AS balance_after,
    (SELECT b.display_name FROM businesses b WHERE b.id = t.user_id) AS business_name,
    (SELECT b.colour FROM businesses b WHERE b.id = t.user_id) AS business_colour
"""

_DUE = f"""
    SELECT {RECEIPT_COLUMNS}, r.status AS receipt_status,
           (SELECT f.voice_receipts FROM plan_features(r.user_id) f) AS voice_receipts
    FROM payout_receipts r JOIN transactions t ON t.id = r.transaction_id
    WHERE r.user_id = $1 AND r.told_at IS NULL AND r.settled_at > now() - interval '{TELL_WITHIN}'
    ORDER BY r.settled_at, r.transaction_id
    LIMIT {MOST_AT_ONCE}
    FOR UPDATE OF r SKIP LOCKED
"""

_TOLD = "UPDATE payout_receipts SET told_at = now(), told_in = $2 WHERE transaction_id = ANY($1::uuid[])"


def settled_of(row: asyncpg.Record, *, spoken: bool) -> PayoutSettled:
    return PayoutSettled(
        transaction_id=row["transaction_id"],
        type=row["type"],
        status=row.get("receipt_status") or row["status"],
        amount=row["amount"],
        fee=row["fee"],
        reference=row["reference"],
        balance=cast(Decimal, row["balance_after"]),
        **recipient_of(row),
        recipient_name=row["contact"] or "",
        spoken=spoken,
        wallet_name=row.get("business_name") or "",
    )


async def tell_receipts(
    conn: asyncpg.Connection,
    session_row: asyncpg.Record,
    state: DialogueState,
    now: datetime,
    world: World,
    *,
    greeting: bool,
) -> tuple[DialogueState, list[Action]]:
    """The untold receipts of the session's user, stepped through the dialogue; those it showed are marked
    told (inside the caller's transaction, which holds the session row's lock)."""
    if state.phase == Phase.ENDED:
        return state, []
    user_id: uuid.UUID = session_row["user_id"]
    rows = await conn.fetch(_DUE, user_id)
    actions: list[Action] = []
    told: list[uuid.UUID] = []
    for row in rows:
        event = settled_of(row, spoken=greeting or bool(row["voice_receipts"]))
        step = machine.step(state, event, now, world)
        if not any(isinstance(a, Show) and a.tool_name == "show_receipt" for a in step.actions):
            break  # the session ended on the way (expiry): the rest wait for the next one
        state = step.state
        actions.extend(step.actions)
        told.append(event.transaction_id)
    if told:
        await conn.execute(_TOLD, told, session_row["session_id"])
    return state, actions


def watch_settlements(
    feed: EventFeed, user_id: uuid.UUID, queue: asyncio.Queue[UserEvent | None]
) -> Callable[[], None]:
    """While a conversation is open, a payout of its user that settles (any process, any server: the feed)
    queues a tick, whose turn tells the receipt. Returns the function that stops watching."""

    def on_event(event: AppEvent) -> None:
        status = event.payload.get("status")
        rejected = status == "cancelled" and event.payload.get("error_message") == "rejected"  # (sql/0028)
        if event.source == "transactions" and (status in ("completed", "failed") or rejected):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(Tick())

    sub = feed.subscribe(user_id, on_event)
    return lambda: feed.unsubscribe(sub)
