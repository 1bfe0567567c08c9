"""Business accounts (issue 23, sql/0028_business.sql): `/v1/business...` for the owner, admins, spenders and
viewers of a business wallet shared by a team.

Who may do what (roles, limits, approvals, exactly-once decisions) is decided by the SQL functions; reads run
as the user under row level security with the business named (`ongea.wallet`), so the policies decide what a
role sees. A member removed is refused at once (404 on everything of the business)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from ledger.business import change_member, create_business, decide, invite, remove_member
from ledger.models import LedgerError
from ledger.reads import as_user
from voice_server.app_api.api_keys import API_KEY
from voice_server.app_api.common import DATABASE_DOWN, money, parse_json_object, read_body, validate
from voice_server.app_api.contacts import classify_phone
from voice_server.app_api.models import clean_text, parse_amount
from voice_server.app_api.openapi_parts import op as _op
from voice_server.app_api.openapi_parts import path_id as _id
from voice_server.appkeys import POOL_KEY
from voice_server.auth import request_user
from voice_server.http_errors import ApiError

_FORBID = ConfigDict(extra="forbid")
Role = Literal["admin", "spender", "viewer"]
_STATUS = {
    "not_found": 404,
    "user_not_found": 404,
    "forbidden_role": 403,
    "plan_required": 403,
    "own_payment": 403,
    "pin_required": 403,
    "wrong_pin": 403,
    "pin_not_set": 403,
    "pin_locked": 423,
    "already_member": 409,
    "already_decided": 409,
    "duplicate": 409,
    "too_many_members": 409,
    "too_many_businesses": 409,
    "invalid_role": 400,
    "invalid_input": 400,
}


def _limit(value: Any) -> Decimal | None:
    return None if value is None else parse_amount(value, allow_zero=True)


class BusinessCreate(BaseModel):
    model_config = _FORBID

    display_name: StrictStr = Field(min_length=1, max_length=80, description="shown to members (white label)")
    colour: StrictStr | None = Field(
        default=None, pattern="^#[0-9a-fA-F]{6}$", description="#rrggbb on members' page and receipts"
    )

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str) -> str | None:
        return clean_text(value, "display_name", 80, required=True)


class MemberInvite(BaseModel):
    model_config = _FORBID

    phone: StrictStr = Field(max_length=64, description="the person's Kenyan mobile number")
    role: Role
    daily_limit: Any = Field(default=None, description="spender: KES a Nairobi day (default 0: cannot pay)")
    approval_amount: Any = Field(
        default=None, description="spender: payments above this wait for approval (default 0: all wait)"
    )

    @field_validator("daily_limit", "approval_amount")
    @classmethod
    def _amounts(cls, value: Any) -> Decimal | None:
        return _limit(value)


class MemberChange(BaseModel):
    model_config = _FORBID

    role: Role | None = None
    daily_limit: Any = None
    approval_amount: Any = None

    @field_validator("daily_limit", "approval_amount")
    @classmethod
    def _amounts(cls, value: Any) -> Decimal | None:
        return _limit(value)


class Decision(BaseModel):
    model_config = _FORBID

    pin: StrictStr = Field(max_length=12, description="the approver's own PIN")


class BusinessOut(BaseModel):
    id: uuid.UUID = Field(description="the business and its wallet")
    display_name: str
    colour: str
    role: str = Field(description="the caller's role")
    wallet_balance: str | None = Field(default=None, description="the business wallet (GET one business)")
    available: str | None = None


class BusinessList(BaseModel):
    items: list[BusinessOut]


class MemberOut(BaseModel):
    id: uuid.UUID
    phone: str
    user_id: uuid.UUID | None = Field(description="null until someone with the phone signs up")
    role: str
    daily_limit: str
    approval_amount: str
    created_at: datetime
    removed_at: datetime | None = None


class MemberList(BaseModel):
    items: list[MemberOut]


class BusinessPayment(BaseModel):
    id: uuid.UUID
    type: str
    status: str
    amount: str
    fee: str
    phone: str
    till: str
    paybill: str
    account: str
    made_by: uuid.UUID | None
    approval_state: str | None
    approved_by: uuid.UUID | None
    created_at: datetime
    approval_requested_at: datetime | None
    expires_at: datetime | None
    confirmed_at: datetime | None


class BusinessPaymentList(BaseModel):
    items: list[BusinessPayment]


class DecisionOut(BaseModel):
    outcome: Literal["approved", "rejected", "expired", "refused"]
    transaction_id: uuid.UUID
    status: str
    approval_state: str | None
    wallet_balance: str
    error: str | None = Field(default=None, description="refused: the ledger's reason (a limit)")


BUSINESS_MODELS: list[type[BaseModel]] = [
    BusinessCreate,
    MemberInvite,
    MemberChange,
    Decision,
    BusinessOut,
    BusinessList,
    MemberOut,
    MemberList,
    BusinessPayment,
    BusinessPaymentList,
    DecisionOut,
]


def _refusal(exc: LedgerError) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 422), exc.code, exc.message or exc.code)


def _user(request: web.Request, *, write: bool) -> uuid.UUID:
    """The caller; an API key reads (as its owner's member rights) but never manages a business."""
    if write and API_KEY in request:
        raise ApiError(403, "api_key_not_allowed", "a business is managed with the user token")
    return request_user(request)


def _business_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "not_found", "no such business") from None


def _uuid_of(request: web.Request, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise ApiError(404, "not_found", "no such item") from None


@asynccontextmanager
async def business_db(request: web.Request, business: uuid.UUID) -> AsyncIterator[asyncpg.Connection]:
    """The user on a read-only connection as `authenticated`, the business named for the policies."""
    user_id = _user(request, write=False)
    try:
        async with as_user(request.app[POOL_KEY], user_id) as conn:
            await conn.execute("SELECT set_config('ongea.wallet', $1, true)", str(business))
            yield conn
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None


async def _call(coro: Any) -> Any:
    try:
        return await coro
    except LedgerError as exc:
        raise _refusal(exc) from None
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None


def _member_out(row: asyncpg.Record) -> dict[str, Any]:
    return MemberOut(
        id=row["id"],
        phone=row["phone"],
        user_id=row["user_id"],
        role=row["role"],
        daily_limit=money(row["daily_limit"]) or "0.00",
        approval_amount=money(row["approval_amount"]) or "0.00",
        created_at=row["created_at"],
        removed_at=row["removed_at"],
    ).model_dump(mode="json")


def _phone(raw: str) -> str:
    number, problem, message = classify_phone(raw)
    if number is None:
        raise ApiError(400, problem or "invalid_phone", message)
    return number


# -- businesses --


async def create(request: web.Request) -> web.Response:
    user_id = _user(request, write=True)
    body = validate(BusinessCreate, parse_json_object(await read_body(request)))
    row = await _call(create_business(request.app[POOL_KEY], user_id, body.display_name, body.colour))
    out = BusinessOut(id=row["id"], display_name=row["display_name"], colour=row["colour"], role="owner")
    return web.json_response(out.model_dump(mode="json"), status=201)


async def list_businesses(request: web.Request) -> web.Response:
    user_id = _user(request, write=False)
    try:
        async with as_user(request.app[POOL_KEY], user_id) as conn:
            rows = await conn.fetch(
                """SELECT b.id, b.display_name, b.colour, business_member_role(b.id) AS role
                   FROM businesses b ORDER BY b.display_name, b.id"""
            )
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None
    items = [
        BusinessOut(id=r["id"], display_name=r["display_name"], colour=r["colour"], role=r["role"])
        for r in rows
    ]
    return web.json_response(BusinessList(items=items).model_dump(mode="json"))


async def get_business(request: web.Request) -> web.Response:
    business = _business_id(request)
    async with business_db(request, business) as conn:
        row = await conn.fetchrow(
            """SELECT b.id, b.display_name, b.colour, business_reader_role(b.id) AS role,
                      p.wallet_balance, p.held_balance
               FROM businesses b JOIN profiles p ON p.id = b.id WHERE b.id = $1""",
            business,
        )
    if row is None or row["role"] is None:
        raise ApiError(404, "not_found", "no such business")
    out = BusinessOut(
        id=row["id"],
        display_name=row["display_name"],
        colour=row["colour"],
        role=row["role"],
        wallet_balance=money(row["wallet_balance"]),
        available=money(row["wallet_balance"] - row["held_balance"]),
    )
    return web.json_response(out.model_dump(mode="json"))


# -- members --


async def add_member(request: web.Request) -> web.Response:
    user_id = _user(request, write=True)
    business = _business_id(request)
    body = validate(MemberInvite, parse_json_object(await read_body(request)))
    row = await _call(
        invite(
            request.app[POOL_KEY],
            business,
            user_id,
            _phone(body.phone),
            body.role,
            body.daily_limit,
            body.approval_amount,
        )
    )
    return web.json_response(_member_out(row), status=201)


async def list_members(request: web.Request) -> web.Response:
    business = _business_id(request)
    async with business_db(request, business) as conn:
        rows = await conn.fetch(
            """SELECT id, phone, user_id, role, daily_limit, approval_amount, created_at, removed_at
               FROM business_members WHERE business_id = $1 AND removed_at IS NULL
               ORDER BY created_at, id""",
            business,
        )
        member = await conn.fetchval("SELECT business_member_role($1)", business)
    if member is None:
        raise ApiError(404, "not_found", "no such business")
    return web.json_response({"items": [_member_out(r) for r in rows]})


async def patch_member(request: web.Request) -> web.Response:
    user_id = _user(request, write=True)
    business = _business_id(request)
    member = _uuid_of(request, "member_id")
    body = validate(MemberChange, parse_json_object(await read_body(request)))
    row = await _call(
        change_member(
            request.app[POOL_KEY],
            business,
            user_id,
            member,
            body.role,
            body.daily_limit,
            body.approval_amount,
        )
    )
    return web.json_response(_member_out(row))


async def delete_member(request: web.Request) -> web.Response:
    user_id = _user(request, write=True)
    business = _business_id(request)
    member = _uuid_of(request, "member_id")
    await _call(remove_member(request.app[POOL_KEY], business, user_id, member))
    return web.Response(status=204)


# -- payments and approvals --

_PAYMENT_COLUMNS = """id, type, status, amount, fee, phone, till, paybill, account, made_by, approval_state,
                      approved_by, created_at, approval_requested_at, expires_at, confirmed_at"""


def _payment_out(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    data["amount"] = money(row["amount"])
    data["fee"] = money(row["fee"])
    for key in ("phone", "till", "paybill", "account"):
        data[key] = data[key] or ""
    return BusinessPayment.model_validate(data).model_dump(mode="json")


async def _payments(request: web.Request, where: str) -> web.Response:
    business = _business_id(request)
    async with business_db(request, business) as conn:
        if await conn.fetchval("SELECT business_reader_role($1)", business) is None:
            raise ApiError(404, "not_found", "no such business")
        rows = await conn.fetch(
            f"""SELECT {_PAYMENT_COLUMNS} FROM transactions WHERE user_id = $1 AND {where}
                ORDER BY created_at DESC, id DESC LIMIT 200""",
            business,
        )
    return web.json_response({"items": [_payment_out(r) for r in rows]})


async def list_approvals(request: web.Request) -> web.Response:
    """Payments waiting for approval: all of them for the owner, admins and viewers, a spender's own."""
    return await _payments(request, "approval_state = 'awaiting'")


async def list_payments(request: web.Request) -> web.Response:
    return await _payments(request, "true")


async def _decide(request: web.Request, approve: bool) -> web.Response:
    user_id = _user(request, write=True)
    business = _business_id(request)
    tx = _uuid_of(request, "tx_id")
    body = validate(Decision, parse_json_object(await read_body(request)))
    # The payment must be of the path's business (a member of two businesses cannot mix them up).
    of = await request.app[POOL_KEY].fetchval("SELECT user_id FROM transactions WHERE id = $1", tx)
    if of != business:
        raise ApiError(404, "not_found", "no such payment waiting for approval")
    result = await _call(decide(request.app[POOL_KEY], tx, user_id, approve=approve, pin=body.pin))
    data = json.loads(result) if isinstance(result, str) else result
    out = DecisionOut(
        outcome=data["outcome"],
        transaction_id=data["transaction_id"],
        status=data["status"],
        approval_state=data.get("approval_state"),
        wallet_balance=data["wallet_balance"],
        error=data.get("error"),
    )
    return web.json_response(out.model_dump(mode="json"))


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, False)


def business_paths() -> dict[str, Any]:
    """The OpenAPI paths of business accounts, from the models above."""

    biz = _id("business id (its wallet's id)")
    member = {**_id("member id"), "name": "member_id"}
    tx = {**_id("transaction id"), "name": "tx_id"}
    decision_errors = (400, 403, 404, 409, 413, 423)
    return {
        "/v1/business": {
            "post": _op(
                "Make a business wallet (plans with features.multi_user); the caller is its owner",
                (201, BusinessOut, "made"),
                body=BusinessCreate,
                errors=(400, 403, 409, 413),
            ),
            "get": _op("The businesses the caller is a member of", (200, BusinessList, "businesses")),
        },
        "/v1/business/{id}": {
            "get": _op(
                "One business and its wallet", (200, BusinessOut, "business"), errors=(404,), params=[biz]
            )
        },
        "/v1/business/{id}/members": {
            "get": _op(
                "Members (the owner, admins and viewers see all; others their own row)",
                (200, MemberList, "members"),
                errors=(404,),
                params=[biz],
            ),
            "post": _op(
                "Invite a phone as admin (owner only), spender or viewer",
                (201, MemberOut, "invited"),
                body=MemberInvite,
                errors=(400, 403, 404, 409, 413),
                params=[biz],
            ),
        },
        "/v1/business/{id}/members/{member_id}": {
            "patch": _op(
                "Change a member's role or limits (not the owner's, not your own)",
                (200, MemberOut, "changed"),
                body=MemberChange,
                errors=(400, 403, 404, 413),
                params=[biz, member],
            ),
            "delete": _op(
                "Remove a member at once: their sessions close, their waiting payments are voided",
                (204, None, "removed"),
                errors=(403, 404),
                params=[biz, member],
            ),
        },
        "/v1/business/{id}/payments": {
            "get": _op(
                "The business's payments as the caller's role shows them (a spender: their own)",
                (200, BusinessPaymentList, "payments"),
                errors=(404,),
                params=[biz],
            )
        },
        "/v1/business/{id}/approvals": {
            "get": _op(
                "Payments waiting for approval (24 hours, the hold kept)",
                (200, BusinessPaymentList, "waiting payments"),
                errors=(404,),
                params=[biz],
            )
        },
        "/v1/business/{id}/approvals/{tx_id}/approve": {
            "post": _op(
                "Approve a waiting payment with your PIN (owner or admin; never your own); exactly once",
                (200, DecisionOut, "decided"),
                body=Decision,
                errors=decision_errors,
                params=[biz, tx],
            )
        },
        "/v1/business/{id}/approvals/{tx_id}/reject": {
            "post": _op(
                "Reject a waiting payment with your PIN: the hold is released, the spender told",
                (200, DecisionOut, "decided"),
                body=Decision,
                errors=decision_errors,
                params=[biz, tx],
            )
        },
    }


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/business", create)
    app.router.add_get("/v1/business", list_businesses)
    app.router.add_get("/v1/business/{id}", get_business)
    app.router.add_post("/v1/business/{id}/members", add_member)
    app.router.add_get("/v1/business/{id}/members", list_members)
    app.router.add_patch("/v1/business/{id}/members/{member_id}", patch_member)
    app.router.add_delete("/v1/business/{id}/members/{member_id}", delete_member)
    app.router.add_get("/v1/business/{id}/payments", list_payments)
    app.router.add_get("/v1/business/{id}/approvals", list_approvals)
    app.router.add_post("/v1/business/{id}/approvals/{tx_id}/approve", approve)
    app.router.add_post("/v1/business/{id}/approvals/{tx_id}/reject", reject)
