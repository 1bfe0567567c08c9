"""Spending answers: `GET /v1/analytics/spending?period=&contact_id=&paybill=&till=&group_by=` and the same
figures for the conversation's `spending_summary`.

What counts as spending is the `spending` view of sql/0023 (payments that reached processing and did not
fail; refunds, top-ups and bank_to_mpesa are not spending), the period's instants are `spending_period`'s
(Africa/Nairobi time, weeks from Monday), and whether the plan answers at all is `plan_features`'s: all read
on a connection acting as the user, so the row level security policies keep the answer to their rows."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field

from ledger.reads import as_user
from voice_server.app_api.common import DATABASE_DOWN, answer, user_db
from voice_server.appkeys import POOL_KEY
from voice_server.auth import request_user
from voice_server.dialogue.events import SpendingTold
from voice_server.dialogue.state import FetchSpending
from voice_server.http_errors import ApiError

PERIODS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year")
GROUPS = ("recipient", "type", "day")
Period = Literal["today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year"]
TOP = 5
_NUMBER = re.compile(r"^\d{5,7}$")


@dataclass(frozen=True)
class SpendingFilter:
    """At most one recipient: a phone (a contact's), a paybill or a till."""

    phone: str | None = None
    paybill: str | None = None
    till: str | None = None


@dataclass
class Figures:
    total: Decimal = Decimal("0")
    fees: Decimal = Decimal("0")
    count: int = 0


@dataclass
class Group:
    key: str
    name: str
    total: Decimal
    fees: Decimal
    count: int


@dataclass
class SpendingSummary:
    period: str
    starts: datetime
    ends: datetime
    current: Figures
    previous: Figures
    top: list[Group] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    @property
    def change(self) -> Decimal:
        return self.current.total - self.previous.total


class PlanRequired(Exception):
    """The user's plan does not give spending answers (`features.analytics`)."""

    def __init__(self, plan: str) -> None:
        super().__init__(plan)
        self.plan = plan


_FILTER = """
    AND ($4::text IS NULL OR (s.type IN ('send_phone', 'buy_goods_pochi') AND s.phone = $4))
    AND ($5::text IS NULL OR (s.type = 'paybill' AND s.paybill = $5))
    AND ($6::text IS NULL OR (s.type = 'buy_goods_till' AND s.till = $6))
"""
# The period's instants ($1 start, $2 end, $3 start of the one before), from `spending_period`.
_PERIOD = (
    "WITH p AS (SELECT $1::timestamptz AS starts, $2::timestamptz AS ends, $3::timestamptz AS prev_starts)"
)
# What the plan gives and the period's instants: asked by the server (not as the user) for the token's user.
_TERMS = """
    SELECT f.plan, f.analytics, p.starts, p.ends, p.prev_starts
    FROM plan_features($1) f, spending_period($2, coalesce($3::timestamptz, now())) p
"""

_TOTALS = f"""
    {_PERIOD}
    SELECT p.starts, p.ends, p.prev_starts,
           coalesce(sum(s.amount) FILTER (WHERE s.spent_at >= p.starts), 0) AS total,
           coalesce(sum(s.fee) FILTER (WHERE s.spent_at >= p.starts), 0) AS fees,
           count(s.id) FILTER (WHERE s.spent_at >= p.starts) AS n,
           coalesce(sum(s.amount) FILTER (WHERE s.spent_at < p.starts), 0) AS prev_total,
           coalesce(sum(s.fee) FILTER (WHERE s.spent_at < p.starts), 0) AS prev_fees,
           count(s.id) FILTER (WHERE s.spent_at < p.starts) AS prev_n
    FROM p LEFT JOIN spending s ON s.spent_at >= p.prev_starts AND s.spent_at < p.ends {_FILTER}
    GROUP BY p.starts, p.ends, p.prev_starts
"""

_KEYS = {
    "recipient": "s.recipient",
    "type": "s.type",
    "day": "s.nairobi_day::text",
}


def _grouped(key: str, limit: int) -> str:
    contact = "NULL::text"
    if key == _KEYS["recipient"]:
        contact = """(SELECT c.name FROM contacts c
                      WHERE s.recipient LIKE 'phone:%' AND c.phone_number = substr(s.recipient, 7)
                      ORDER BY c.favorite DESC NULLS LAST, c.name LIMIT 1)"""
    return f"""
    {_PERIOD}
    SELECT {key} AS key, sum(s.amount) AS total, sum(s.fee) AS fees, count(*) AS n, {contact} AS contact
    FROM p JOIN spending s ON s.spent_at >= p.starts AND s.spent_at < p.ends {_FILTER}
    GROUP BY {key}
    ORDER BY {"key" if key.endswith("day::text") else "total DESC, key"}
    LIMIT {limit}
"""


def _name(key: str, contact: str | None) -> str:
    if contact:
        return contact
    kind, _, value = key.partition(":")
    return value if kind in ("phone", "till", "paybill", "agent", "bank") else key


async def spending_summary(
    pool: asyncpg.Pool,
    user_id: uuid.UUID,
    period: str,
    who: SpendingFilter,
    *,
    group_by: str | None = None,
    now: datetime | None = None,
) -> SpendingSummary:
    """The user's figures, PlanRequired when the plan does not give them. The plan and the period come from
    `plan_features` and `spending_period`; the payments are read as the user (`ledger.reads.as_user`)."""
    terms = await pool.fetchrow(_TERMS, user_id, period, now)
    assert terms is not None
    if not terms["analytics"]:
        raise PlanRequired(terms["plan"])
    args = (terms["starts"], terms["ends"], terms["prev_starts"], who.phone, who.paybill, who.till)
    async with as_user(pool, user_id) as conn:
        return await _figures(conn, period, args, group_by)


async def _figures(
    conn: asyncpg.Connection, period: str, args: tuple[object, ...], group_by: str | None
) -> SpendingSummary:
    row = await conn.fetchrow(_TOTALS, *args)
    assert row is not None
    top = [
        Group(r["key"], _name(r["key"], r["contact"]), r["total"], r["fees"], r["n"])
        for r in await conn.fetch(_grouped(_KEYS["recipient"], TOP), *args)
    ]
    groups: list[Group] = []
    if group_by is not None:
        groups = [
            Group(r["key"], _name(r["key"], r["contact"]), r["total"], r["fees"], r["n"])
            for r in await conn.fetch(_grouped(_KEYS[group_by], 400), *args)
        ]
    return SpendingSummary(
        period=period,
        starts=row["starts"],
        ends=row["ends"],
        current=Figures(row["total"], row["fees"], row["n"]),
        previous=Figures(row["prev_total"], row["prev_fees"], row["prev_n"]),
        top=top,
        groups=groups,
    )


# --- HTTP ----------------------------------------------------------------------------------------------


class GroupOut(BaseModel):
    key: str = Field(description="recipient (phone:/till:/paybill:/agent:/bank: + number), type, or day")
    name: str
    total: str
    fees: str
    count: int


class FiguresOut(BaseModel):
    total: str
    fees: str
    count: int


class SpendingOut(BaseModel):
    period: str
    starts: datetime
    ends: datetime
    total: str = Field(description="sum of the amounts paid (fees apart)")
    fees: str
    count: int
    previous: FiguresOut = Field(description="the period before (yesterday for today, last month for ...)")
    change: str = Field(description="total minus the previous period's total")
    change_percent: float | None = Field(description="null when the previous period spent nothing")
    top_recipients: list[GroupOut]
    groups: list[GroupOut] | None = None


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _group_out(g: Group) -> GroupOut:
    return GroupOut(key=g.key, name=g.name, total=_money(g.total), fees=_money(g.fees), count=g.count)


def summary_out(s: SpendingSummary, group_by: str | None) -> SpendingOut:
    prev = s.previous.total
    percent = None if prev == 0 else float(round((s.current.total - prev) / prev * 100, 1))
    return SpendingOut(
        period=s.period,
        starts=s.starts,
        ends=s.ends,
        total=_money(s.current.total),
        fees=_money(s.current.fees),
        count=s.current.count,
        previous=FiguresOut(total=_money(prev), fees=_money(s.previous.fees), count=s.previous.count),
        change=_money(s.change),
        change_percent=percent,
        top_recipients=[_group_out(g) for g in s.top],
        groups=[_group_out(g) for g in s.groups] if group_by is not None else None,
    )


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, "invalid_request", f"{name} is given once")
    return values[0] if values and values[0] != "" else None


async def get_spending(request: web.Request) -> web.Response:
    period = _one(request, "period") or "this_month"
    if period not in PERIODS:
        raise ApiError(400, "invalid_period", f"period is one of {', '.join(PERIODS)}")
    group_by = _one(request, "group_by")
    if group_by is not None and group_by not in GROUPS:
        raise ApiError(400, "invalid_group_by", f"group_by is one of {', '.join(GROUPS)}")
    contact = _one(request, "contact_id")
    paybill, till = _one(request, "paybill"), _one(request, "till")
    if sum(v is not None for v in (contact, paybill, till)) > 1:
        raise ApiError(400, "invalid_request", "ask about one recipient at a time")
    for name, value in (("paybill", paybill), ("till", till)):
        if value is not None and not _NUMBER.match(value):
            raise ApiError(400, f"invalid_{name}", f"{name} is a number of 5 to 7 digits")
    contact_id: uuid.UUID | None = None
    if contact is not None:
        try:
            contact_id = uuid.UUID(contact)
        except ValueError:
            raise ApiError(404, "not_found", "no such contact") from None
    phone: str | None = None
    async with user_db(request) as conn:
        if contact_id is not None:
            phone = await conn.fetchval("SELECT phone_number FROM contacts WHERE id = $1", contact_id)
            if phone is None:
                raise ApiError(404, "not_found", "no such contact")
    who = SpendingFilter(phone=phone, paybill=paybill, till=till)
    try:
        summary = await spending_summary(
            request.app[POOL_KEY], request_user(request), period, who, group_by=group_by
        )
    except PlanRequired:
        raise ApiError(
            403, "plan_required", "Spending answers come with the Pro plan: upgrade in the app."
        ) from None
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None
    return answer(summary_out(summary, group_by))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/analytics/spending", get_spending)


# --- the conversation -------------------------------------------------------------------------------------


async def spending_told(pool: asyncpg.Pool, user_id: uuid.UUID, action: FetchSpending) -> SpendingTold:
    """The dialogue's spending question answered as the app's is: as the user, under row level security."""
    period = action.period if action.period in PERIODS else "this_month"
    who = SpendingFilter(phone=action.phone or None, paybill=action.paybill or None, till=action.till or None)
    try:
        s = await spending_summary(pool, user_id, period, who)
    except PlanRequired:
        return SpendingTold(allowed=False, period=period)
    return SpendingTold(
        allowed=True,
        period=period,
        total=s.current.total,
        fees=s.current.fees,
        count=s.current.count,
        previous_total=s.previous.total,
        top=tuple(g.name for g in s.top),
        recipient=action.recipient,
    )
