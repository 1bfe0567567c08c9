"""`GET /v1/analytics/spending` on a database seeded with three months of history (several plans, periods,
recipients, statuses, and payments a second either side of a Nairobi month boundary), each answer checked
against a plain SQL sum whose bounds are worked out here in Python (zoneinfo), not by the server's SQL."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.app_api.conftest import Api, MakeApiUser

NAIROBI = ZoneInfo("Africa/Nairobi")
MAMA = "254733444555"
JK = "254722111222"


def month_start(local: datetime, back: int = 0) -> datetime:
    year, month = local.year, local.month - back
    while month < 1:
        year, month = year - 1, month + 12
    while month > 12:
        year, month = year + 1, month - 12
    return datetime(year, month, 1, tzinfo=NAIROBI)


def bounds(period: str, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, start of the period before), as a person in Nairobi counts them."""
    local = now.astimezone(NAIROBI)
    day = datetime(local.year, local.month, local.day, tzinfo=NAIROBI)
    if period == "today":
        return day, day + timedelta(days=1), day - timedelta(days=1)
    if period == "this_week":
        monday = day - timedelta(days=local.weekday())
        return monday, monday + timedelta(days=7), monday - timedelta(days=7)
    if period == "this_month":
        return month_start(local), month_start(local, -1), month_start(local, 1)
    if period == "last_month":
        return month_start(local, 1), month_start(local), month_start(local, 2)
    if period == "this_year":
        start = datetime(local.year, 1, 1, tzinfo=NAIROBI)
        return (
            start,
            datetime(local.year + 1, 1, 1, tzinfo=NAIROBI),
            datetime(local.year - 1, 1, 1, tzinfo=NAIROBI),
        )
    raise AssertionError(period)


PLAIN = """
    SELECT coalesce(sum(amount), 0) AS total, coalesce(sum(fee), 0) AS fees, count(*) AS n
    FROM transactions
    WHERE user_id = $1 AND status IN ('processing', 'completed') AND type <> 'bank_to_mpesa'
      AND confirmed_at >= $2 AND confirmed_at < $3
"""


async def _pay(
    pool: asyncpg.Pool,
    user: uuid.UUID,
    when: datetime,
    amount: str,
    *,
    type_: str = "send_phone",
    status: str = "completed",
    phone: str = "",
    till: str = "",
    paybill: str = "",
    account: str = "",
    bank_code: str = "",
) -> None:
    fee = (Decimal(amount) * Decimal("0.005")).quantize(Decimal("0.01"))
    confirmed = when if status in ("processing", "completed", "failed") else None
    await pool.execute(
        """INSERT INTO transactions (user_id, type, amount, fee, status, phone, till, paybill, account,
                                     bank_code, created_at, confirmed_at, completed_at, mpesa_transaction_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        user,
        type_,
        Decimal(amount),
        fee,
        status,
        phone,
        till,
        paybill,
        account,
        bank_code,
        when - timedelta(seconds=20),
        confirmed,
        when if status in ("completed", "failed") else None,
        f"QK{random.randrange(10**8):08d}" if status == "completed" else "",
    )


async def seed(pool: asyncpg.Pool, user: uuid.UUID, now: datetime, rng: random.Random) -> None:
    """Three months of the user's life, and payments either side of this month's Nairobi midnight."""
    local = now.astimezone(NAIROBI)
    start = month_start(local, 2)
    span = (now - start).total_seconds()
    kinds = [
        {"type_": "send_phone", "phone": MAMA},
        {"type_": "send_phone", "phone": JK},
        {"type_": "buy_goods_till", "till": "123456"},
        {"type_": "paybill", "paybill": "888880", "account": "ACC1"},
        {"type_": "buy_goods_pochi", "phone": JK},
        {"type_": "mpesa_to_bank", "bank_code": "68", "account": "0123456"},
        {"type_": "bank_to_mpesa", "bank_code": "68"},  # money in: never spending
    ]
    for _ in range(90):
        when = start + timedelta(seconds=rng.uniform(0, span - 60))
        status = rng.choice(["completed"] * 6 + ["processing", "failed", "cancelled", "pending"])
        await _pay(pool, user, when, str(rng.randrange(10, 5000)), status=status, **rng.choice(kinds))
    # 21:00 UTC on the last day of last month is midnight in Nairobi: a second either side.
    boundary = month_start(local).astimezone(UTC)
    if now - boundary > timedelta(seconds=5):
        await _pay(pool, user, boundary + timedelta(seconds=1), "777", phone=MAMA)
    await _pay(pool, user, boundary - timedelta(seconds=1), "333", phone=MAMA)
    await _pay(pool, user, boundary - timedelta(hours=2, seconds=1), "111", phone=MAMA)  # 22:59 UTC-ish


@pytest.fixture
def rng() -> Iterator[random.Random]:
    yield random.Random(22)


async def test_spending_matches_a_plain_sum_over_periods_recipients_and_nairobi_months(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool, rng: random.Random
) -> None:
    user = await make_api_user(plan="pro")
    other = await make_api_user(plan="pro")
    await pool.execute(
        "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, 'Mary Wambui', $2)", user.id, MAMA
    )
    now = datetime.now(UTC)
    await seed(pool, user.id, now, rng)
    await seed(pool, other.id, now, random.Random(5))  # the same recipients: never in the user's figures

    for period in ("today", "this_week", "this_month", "last_month", "this_year"):
        start, end, before = bounds(period, now)
        got = await api.call("GET", f"/v1/analytics/spending?period={period}", user)
        assert got.status == 200, got.body
        want = await pool.fetchrow(PLAIN, user.id, start, end)
        prev = await pool.fetchrow(PLAIN, user.id, before, start)
        assert (got.body["total"], got.body["fees"], got.body["count"]) == (
            f"{want['total']:.2f}",
            f"{want['fees']:.2f}",
            want["n"],
        ), period
        assert got.body["previous"]["total"] == f"{prev['total']:.2f}", period
        assert got.body["previous"]["count"] == prev["n"], period
        assert Decimal(got.body["change"]) == want["total"] - prev["total"]
        assert datetime.fromisoformat(got.body["starts"]) == start, period

    # The month boundary is Nairobi's: 21:00 UTC on the last day is already this month.
    this_month = await api.call("GET", "/v1/analytics/spending?period=this_month&group_by=day", user)
    first_day = month_start(now.astimezone(NAIROBI)).date().isoformat()
    days = {g["key"]: g for g in this_month.body["groups"]}
    if now - month_start(now.astimezone(NAIROBI)) > timedelta(seconds=5):
        assert Decimal(days[first_day]["total"]) >= Decimal("777")
    last_month = await api.call("GET", "/v1/analytics/spending?period=last_month&group_by=day", user)
    last_day = (month_start(now.astimezone(NAIROBI)) - timedelta(days=1)).date().isoformat()
    assert last_day in {g["key"] for g in last_month.body["groups"]}
    assert sum(Decimal(g["total"]) for g in last_month.body["groups"]) == Decimal(last_month.body["total"])

    # One recipient: a contact (by id), a paybill, a till.
    contact_id = await pool.fetchval("SELECT id FROM contacts WHERE user_id = $1", user.id)
    start, end, _ = bounds("last_month", now)
    for query, where, args in (
        (f"contact_id={contact_id}", "type IN ('send_phone', 'buy_goods_pochi') AND phone = $4", (MAMA,)),
        ("paybill=888880", "type = 'paybill' AND paybill = $4", ("888880",)),
        ("till=123456", "type = 'buy_goods_till' AND till = $4", ("123456",)),
    ):
        got = await api.call("GET", f"/v1/analytics/spending?period=last_month&{query}", user)
        want = await pool.fetchrow(PLAIN.replace("$3", f"$3 AND {where}"), user.id, start, end, *args)
        assert (got.body["total"], got.body["count"]) == (f"{want['total']:.2f}", want["n"]), query

    # The largest recipients, named by the contact when there is one; by type and by recipient add up.
    grouped = await api.call("GET", "/v1/analytics/spending?period=last_month&group_by=recipient", user)
    groups = grouped.body["groups"]
    assert [g["total"] for g in grouped.body["top_recipients"]] == [g["total"] for g in groups[:5]]
    assert sum(Decimal(g["total"]) for g in groups) == Decimal(grouped.body["total"])
    assert any(g["key"] == f"phone:{MAMA}" and g["name"] == "Mary Wambui" for g in groups)
    by_type = await api.call("GET", "/v1/analytics/spending?period=last_month&group_by=type", user)
    assert "bank_to_mpesa" not in {g["key"] for g in by_type.body["groups"]}
    assert sum(g["count"] for g in by_type.body["groups"]) == by_type.body["count"]


@pytest.mark.parametrize("plan", ["free", "basic"])
async def test_plans_without_analytics_are_told_it_comes_with_pro(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool, plan: str
) -> None:
    user = await make_api_user(plan=plan)
    await _pay(pool, user.id, datetime.now(UTC) - timedelta(minutes=5), "500", phone=MAMA)
    got = await api.call("GET", "/v1/analytics/spending", user)
    assert got.status == 403 and got.body["error"]["code"] == "plan_required"
    assert "Pro" in got.body["error"]["message"] and "500" not in got.body["error"]["message"]


async def test_business_has_analytics_too(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user(plan="business")
    got = await api.call("GET", "/v1/analytics/spending?period=today", user)
    assert got.status == 200 and got.body["count"] == 0 and got.body["change_percent"] is None


async def test_bad_questions_get_clear_errors(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(plan="pro")
    other = await make_api_user(plan="pro")
    theirs = await pool.fetchval(
        "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, 'Secret', $2) RETURNING id",
        other.id,
        JK,
    )
    for query, status, code in (
        ("period=forever", 400, "invalid_period"),
        ("period='; DROP TABLE transactions; --", 400, "invalid_period"),
        ("group_by=user_id", 400, "invalid_group_by"),
        ("paybill=12", 400, "invalid_paybill"),
        ("till=abc123", 400, "invalid_till"),
        ("till=123456&paybill=888880", 400, "invalid_request"),
        ("period=today&period=this_year", 400, "invalid_request"),
        ("contact_id=not-a-uuid", 404, "not_found"),
        (f"contact_id={theirs}", 404, "not_found"),  # another user's contact is not there
    ):
        got = await api.call("GET", f"/v1/analytics/spending?{query}", user)
        assert (got.status, got.body["error"]["code"]) == (status, code), query
    assert (await api.call("GET", "/v1/analytics/spending")).status == 401
    assert await pool.fetchval("SELECT count(*) FROM transactions") is not None
