"""The app's reads, each on a connection already acting as the user (`ledger.reads.as_user`): no statement
here names a user id, the row level security policies pick the rows. Shared by the HTTP handlers and
`ongea-pesa user show`."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from intents.models import recipient_of
from voice_server.app_api.models import (
    BalanceEntry,
    Contact,
    PaymentMethod,
    Plan,
    Profile,
    Subscription,
    Topup,
    Transaction,
    Usage,
)
from voice_server.http_errors import ApiError


def _money(value: Any) -> str:
    return f"{value:.2f}"


def _opt_money(value: Any) -> str | None:
    return None if value is None else f"{value:.2f}"


# The plan the ledger charges by (ledger_user_terms in sql/0003): the active subscription covering now,
# the latest started first; none = the free plan.
_SUBSCRIPTION = """
    SELECT s.plan_type AS plan, s.status, s.transaction_fee_percentage, s.monthly_transaction_limit,
           s.current_period_start, s.current_period_end, s.cancel_at,
           s.stripe_subscription_id IS NOT NULL AS managed_by_stripe
    FROM subscriptions s
    WHERE s.status = 'active' AND now() >= s.current_period_start AND now() < s.current_period_end
    ORDER BY s.current_period_start DESC
    LIMIT 1
"""
_FREE = """
    SELECT 'free' AS plan, 'active' AS status, transaction_fee_percentage, monthly_transaction_limit,
           NULL::timestamptz AS current_period_start, NULL::timestamptz AS current_period_end,
           NULL::timestamptz AS cancel_at, false AS managed_by_stripe
    FROM subscription_plans WHERE id = 'free'
"""


async def subscription(conn: asyncpg.Connection) -> Subscription:
    row = await conn.fetchrow(_SUBSCRIPTION) or await conn.fetchrow(_FREE)
    assert row is not None, "the free plan is seeded by 0002"
    data = dict(row)
    data["transaction_fee_percentage"] = f"{row['transaction_fee_percentage']:.4f}"
    return Subscription.model_validate(data)


async def usage(conn: asyncpg.Connection, limit: int | None) -> Usage:
    """Payments that reached processing this calendar month in Nairobi time (what the monthly limit
    counts: ledger_usage is kept by the ledger and agrees with this, see ledger.invariants)."""
    row = await conn.fetchrow(
        """SELECT to_char(now() AT TIME ZONE 'Africa/Nairobi', 'YYYY-MM') AS month,
                  (SELECT count(*) FROM transactions
                   WHERE confirmed_at >= date_trunc('month', now() AT TIME ZONE 'Africa/Nairobi')
                                         AT TIME ZONE 'Africa/Nairobi') AS n"""
    )
    assert row is not None
    n = int(row["n"])
    remaining = None if limit is None else max(0, limit - n)
    return Usage(month=row["month"], transactions=n, limit=limit, remaining=remaining)


async def profile(conn: asyncpg.Connection) -> Profile | None:
    row = await conn.fetchrow(
        """SELECT p.id, p.phone_number, p.mpesa_number, p.wallet_balance, p.held_balance,
                  p.mpesa_auto_topup, p.mpesa_auto_topup_threshold, p.mpesa_auto_topup_amount,
                  p.card_auto_topup, p.default_payment_method, p.biometric_enabled, p.pin_set,
                  CASE WHEN p.pin_locked_until > now() THEN p.pin_locked_until END AS pin_locked_until,
                  p.created_at,
                  (SELECT m.id FROM payment_methods m WHERE m.is_default AND m.is_active LIMIT 1)
                      AS default_payment_method_id
           FROM profiles p"""
    )
    if row is None:
        return None
    plan = await subscription(conn)
    return Profile(
        id=row["id"],
        phone=row["phone_number"],
        mpesa_number=row["mpesa_number"],
        wallet_balance=_money(row["wallet_balance"]),
        held_balance=_money(row["held_balance"]),
        available_balance=_money(row["wallet_balance"] - row["held_balance"]),
        mpesa_auto_topup=bool(row["mpesa_auto_topup"]),
        mpesa_auto_topup_threshold=_opt_money(row["mpesa_auto_topup_threshold"]),
        mpesa_auto_topup_amount=_opt_money(row["mpesa_auto_topup_amount"]),
        card_auto_topup=bool(row["card_auto_topup"]),
        default_payment_method=row["default_payment_method"] or "wallet",
        default_payment_method_id=row["default_payment_method_id"],
        biometric_enabled=bool(row["biometric_enabled"]),
        pin_set=bool(row["pin_set"]),
        pin_locked_until=row["pin_locked_until"],
        plan=plan,
        usage=await usage(conn, plan.monthly_transaction_limit),
        created_at=row["created_at"],
    )


async def plans(conn: asyncpg.Connection) -> list[Plan]:
    rows = await conn.fetch(
        """SELECT id, name, monthly_fee, transaction_fee_percentage, monthly_transaction_limit,
                  coalesce(features, '{}'::jsonb) AS features
           FROM subscription_plans ORDER BY monthly_fee, id"""
    )
    return [
        Plan(
            id=r["id"],
            name=r["name"],
            monthly_fee=_money(r["monthly_fee"]),
            transaction_fee_percentage=f"{r['transaction_fee_percentage']:.4f}",
            monthly_transaction_limit=r["monthly_transaction_limit"],
            features=r["features"],
        )
        for r in rows
    ]


# --------------------------------------------------------------------------------------------------------
# Contacts
# --------------------------------------------------------------------------------------------------------

CONTACT_COLUMNS = """id, name, phone_number, nickname, relationship, default_amount, favorite,
                     transaction_count, total_sent, created_at, updated_at"""


def contact(row: asyncpg.Record) -> Contact:
    return Contact(
        id=row["id"],
        name=row["name"],
        phone=row["phone_number"] or "",
        nickname=row["nickname"],
        relationship=row["relationship"],
        default_amount=_opt_money(row["default_amount"]),
        favorite=bool(row["favorite"]),
        transaction_count=row["transaction_count"] or 0,
        total_sent=_money(row["total_sent"] or 0),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def contacts(conn: asyncpg.Connection) -> list[Contact]:
    rows = await conn.fetch(f"SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY favorite DESC, lower(name), id")
    return [contact(r) for r in rows]


# --------------------------------------------------------------------------------------------------------
# History: keyset pages, newest first. The cursor is opaque to the app; a tampered one is a 400, and even
# a well-formed forged one can only move the page within the user's own rows (the policies still apply).
# --------------------------------------------------------------------------------------------------------


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([str(p) for p in parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        if len(cursor) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not (isinstance(parts, list) and len(parts) == size and all(isinstance(p, str) for p in parts)):
            raise ValueError
        return parts
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ApiError(
            400, "invalid_cursor", "before is a cursor from a previous page's next_before"
        ) from None


def transaction(row: asyncpg.Record) -> Transaction:
    return Transaction(
        id=row["id"],
        type=row["type"],
        status=row["status"],
        amount=_money(row["amount"]),
        fee=_money(row["fee"]),
        **recipient_of(row),
        mpesa_receipt=row["mpesa_transaction_id"] or "",
        reference=row["mpesa_transaction_id"] or "",
        error_message=row["error_message"],
        voice_verified=bool(row["voice_verified"]),
        created_at=row["created_at"],
        confirmed_at=row["confirmed_at"],
        completed_at=row["completed_at"],
    )


TRANSACTION_COLUMNS = """id, type, status, amount, fee, phone, till, paybill, account, agent, store,
                         bank_code, mpesa_transaction_id, error_message, voice_verified, created_at,
                         confirmed_at, completed_at"""


async def transactions_page(
    conn: asyncpg.Connection,
    *,
    status: str | None = None,
    type_: str | None = None,
    before: str | None = None,
    limit: int = 20,
) -> tuple[list[Transaction], str | None]:
    after_time: datetime | None = None
    after_id: uuid.UUID | None = None
    if before:
        when, ident = decode_cursor(before, 2)
        try:
            after_time, after_id = datetime.fromisoformat(when), uuid.UUID(ident)
        except ValueError:
            raise ApiError(400, "invalid_cursor", "before is a cursor from a previous page") from None
        if after_time.tzinfo is None:
            after_time = after_time.replace(tzinfo=UTC)
        try:  # a forged offset can push the instant out of the calendar (0001-01-01T00:00+23:59)
            after_time = after_time.astimezone(UTC)
        except OverflowError:
            raise ApiError(400, "invalid_cursor", "before is a cursor from a previous page") from None
    rows = await conn.fetch(
        f"""SELECT {TRANSACTION_COLUMNS} FROM transactions
            WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR type = $2)
              AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $5""",
        status,
        type_,
        after_time,
        after_id,
        limit + 1,
    )
    items = [transaction(r) for r in rows[:limit]]
    more = len(rows) > limit
    cursor = encode_cursor(items[-1].created_at.isoformat(), items[-1].id) if more and items else None
    return items, cursor


async def balance_page(
    conn: asyncpg.Connection, *, before: str | None = None, limit: int = 50
) -> tuple[list[BalanceEntry], str | None]:
    seq: int | None = None
    if before:
        (text,) = decode_cursor(before, 1)
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            raise ApiError(400, "invalid_cursor", "before is a cursor from a previous page")
        seq = int(text)
    rows = await conn.fetch(
        """SELECT id, transaction_id, topup_id, previous_balance, new_balance, change_amount, reason,
                  created_at, seq
           FROM balance_history WHERE ($1::bigint IS NULL OR seq < $1)
           ORDER BY seq DESC LIMIT $2""",
        seq,
        limit + 1,
    )
    items = [
        BalanceEntry(
            id=r["id"],
            transaction_id=r["transaction_id"],
            topup_id=r["topup_id"],
            previous_balance=_money(r["previous_balance"]),
            new_balance=_money(r["new_balance"]),
            change_amount=_money(r["change_amount"]),
            reason=r["reason"],
            created_at=r["created_at"],
        )
        for r in rows[:limit]
    ]
    cursor = encode_cursor(rows[limit - 1]["seq"]) if len(rows) > limit else None
    return items, cursor


def topup(row: asyncpg.Record) -> Topup:
    return Topup(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        amount=_money(row["amount"]),
        phone=row["phone_number"],
        mpesa_receipt=row["mpesa_receipt_number"],
        error_message=row["error_message"],
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


TOPUP_COLUMNS = """id, kind, status, amount, phone_number, mpesa_receipt_number, error_message, created_at,
                   completed_at"""


# --------------------------------------------------------------------------------------------------------
# Payment methods
# --------------------------------------------------------------------------------------------------------

PAYMENT_METHOD_COLUMNS = """id, method_type, is_default, mpesa_number, bank_code, bank_name,
                            bank_account_number, card_last4, card_brand, created_at"""


def payment_method(row: asyncpg.Record) -> PaymentMethod:
    return PaymentMethod(
        id=row["id"],
        type=row["method_type"],
        is_default=bool(row["is_default"]),
        mpesa_number=row["mpesa_number"],
        bank_code=row["bank_code"],
        bank_name=row["bank_name"],
        account_number=row["bank_account_number"],
        card_last4=row["card_last4"],
        card_brand=row["card_brand"],
        created_at=row["created_at"],
    )


async def payment_methods(conn: asyncpg.Connection) -> list[PaymentMethod]:
    rows = await conn.fetch(
        f"""SELECT {PAYMENT_METHOD_COLUMNS} FROM payment_methods WHERE is_active
            ORDER BY is_default DESC, created_at, id"""
    )
    return [payment_method(r) for r in rows]
