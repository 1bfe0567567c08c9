"""API access (issue 23): `/v1/api-keys`, `/v1/payees` and `POST /v1/payments` for a till system or a script.

A key (`op_live_...`) is shown once and stored as its sha256 (a 256-bit random secret, not a password). The
rules (plan, scopes, revocation, rate and daily limits, trusted payees, idempotency, the PIN exemption) are
sql/0026's; this module reads bodies, checks the PIN with the ledger's lockout, and asks."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from ledger.pins import check_user_pin
from voice_server.app_api.common import (
    DATABASE_DOWN,
    money,
    parse_json_object,
    path_id,
    read_body,
    user_db,
    validate,
)
from voice_server.app_api.contacts import classify_phone
from voice_server.app_api.models import clean_text, parse_amount
from voice_server.app_api.openapi_parts import op as _op
from voice_server.app_api.openapi_parts import path_id as _id
from voice_server.appkeys import POOL_KEY
from voice_server.auth import API_KEY_USER, bearer_token, request_user
from voice_server.http_errors import ApiError

KEY_PREFIX = "op_live_"
API_KEY = web.RequestKey("api_key", dict[str, Any])  # the key row a request was authenticated with
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A key answers on the app API's reads; never on key, session or conversation routes, nor on the live event
# stream (it runs up to an hour on the credential it was opened with, so a revoked key would still read).
_NOT_FOR_KEYS = ("/v1/api-keys", "/v1/sessions", "/v1/convai", "/v1/me/pin", "/v1/events")
_REFUSALS = {
    "invalid_api_key": 401,
    "plan_required": 403,
    "insufficient_scope": 403,
    "pin_required": 403,
    "rate_limited": 429,
    "user_not_found": 404,
    "too_many_keys": 409,
}
_FORBID = ConfigDict(extra="forbid")


def _clean_name(value: str) -> str | None:
    """Names are cleaned as contacts' are: a NUL would be a 500 from PostgreSQL, and a direction override
    makes a payee's name read as another's on the owner's list, receipts and audit log."""
    return clean_text(value, "name", 100, required=True)


class ApiKeyCreate(BaseModel):
    model_config = _FORBID

    name: StrictStr = Field(min_length=1, max_length=100)
    scopes: list[Literal["read", "pay"]] = Field(min_length=1, max_length=2)
    pin: StrictStr | None = Field(default=None, max_length=12, description="needed for a key with `pay`")
    daily_limit: Any = Field(default="10000", description="KES this key may pay per Nairobi day")
    rate_limit_per_minute: int = Field(default=60, ge=1, le=10000, strict=True)

    @field_validator("daily_limit")
    @classmethod
    def _limit(cls, value: Any) -> Decimal:
        return parse_amount(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str | None:
        return _clean_name(value)


class PayeeCreate(BaseModel):
    model_config = _FORBID

    phone: StrictStr = Field(max_length=64)
    name: StrictStr = Field(min_length=1, max_length=100)
    pin: StrictStr = Field(max_length=12)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str | None:
        return _clean_name(value)


class PaymentCreate(BaseModel):
    model_config = _FORBID

    phone: StrictStr = Field(max_length=64)
    amount: Any
    description: StrictStr | None = Field(default=None, max_length=500)

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return parse_amount(value, whole=True)

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        return clean_text(value, "description", 500)


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[Literal["read", "pay"]]
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    daily_limit: str = Field(description="KES this key may pay per Nairobi day")
    rate_limit_per_minute: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="op_live_...: shown this once, stored only as its sha256")


class ApiKeyEvent(BaseModel):
    key_id: uuid.UUID | None
    event: str = Field(description="created, revoked, payment, payee_trusted, payee_removed")
    detail: dict[str, Any]
    at: datetime


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    events: list[ApiKeyEvent] = Field(description="the audit log of the user's keys, newest first (200)")


class PayeeOut(BaseModel):
    id: uuid.UUID
    phone: str
    name: str
    confirmed_at: datetime


class PayeeList(BaseModel):
    items: list[PayeeOut]


class PaymentOut(BaseModel):
    transaction_id: uuid.UUID
    status: str = Field(description="processing: debited and queued for M-Pesa")
    amount: str
    fee: str
    phone: str
    payee: str
    wallet_balance: str
    confirmed_at: datetime


API_KEY_MODELS: list[type[BaseModel]] = [
    ApiKeyCreate,
    PayeeCreate,
    PaymentCreate,
    ApiKeyOut,
    ApiKeyCreated,
    ApiKeyEvent,
    ApiKeyList,
    PayeeOut,
    PayeeList,
    PaymentOut,
]


def api_key_paths() -> dict[str, Any]:
    """The OpenAPI paths of keys, trusted payees and payments by key, from the models above."""

    payment = _op(
        "Pay a trusted payee with a `pay` key (Authorization: Bearer op_live_...), idempotent by the "
        "Idempotency-Key header (Stripe's semantics, 24 hours; a replay answers Idempotent-Replayed: true)",
        (201, PaymentOut, "paid (or the first answer, replayed)"),
        body=PaymentCreate,
        errors=(400, 403, 409, 413, 422, 429),
        params=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ],
    )
    return {
        "/v1/api-keys": {
            "post": _op(
                "Make an API key (plans with features.api_access; a `pay` key needs the PIN); shown once",
                (201, ApiKeyCreated, "the key, this once"),
                body=ApiKeyCreate,
                errors=(400, 403, 409, 413, 423),
            ),
            "get": _op("The user's keys and their audit log", (200, ApiKeyList, "keys"), errors=(403,)),
        },
        "/v1/api-keys/{id}": {
            "delete": _op(
                "Revoke a key at once", (204, None, "revoked"), errors=(403, 404), params=[_id("key id")]
            )
        },
        "/v1/payees": {
            "post": _op(
                "Trust a payee for API payments, confirmed with the PIN",
                (201, PayeeOut, "trusted"),
                body=PayeeCreate,
                errors=(400, 403, 413, 423),
            ),
            "get": _op("The trusted payees", (200, PayeeList, "payees"), errors=(403,)),
        },
        "/v1/payees/{id}": {
            "delete": _op(
                "Stop trusting a payee", (204, None, "removed"), errors=(403, 404), params=[_id("payee id")]
            )
        },
        "/v1/payments": {"post": payment},
    }


def key_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _refusal(exc: asyncpg.PostgresError) -> ApiError:
    if exc.sqlstate == "OPL01":
        code = str(exc.args[0]) if exc.args else "refused"
        detail = getattr(exc, "detail", None) or code
        return ApiError(_REFUSALS.get(code, 422), code, detail)
    if isinstance(exc, asyncpg.UniqueViolationError):
        return ApiError(409, "conflict", "this already exists")
    raise exc


def _phone(raw: str) -> str:
    number, problem, message = classify_phone(raw)
    if number is None:
        raise ApiError(400, problem or "invalid_phone", message)
    return number


def _key_out(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "scopes": list(row["scopes"]),
        "prefix": row["prefix"],
        "daily_limit": money(row["daily_limit"]),
        "rate_limit_per_minute": row["rate_limit_per_minute"],
        "created_at": row["created_at"].isoformat(),
        "last_used_at": row["last_used_at"].isoformat() if row["last_used_at"] else None,
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
    }


async def _with_pin(request: web.Request, user_id: uuid.UUID, pin: str | None, query: str, *args: Any) -> Any:
    """`query` in the database transaction of a PIN attempt (the ledger's lockout), so the SQL finds the
    evidence of a correct PIN; a wrong PIN is counted (committed) and refused."""
    pool = request.app[POOL_KEY]
    outcome = "ok"
    row: Any = None
    try:
        async with pool.acquire() as conn, conn.transaction():
            if pin is not None:
                check = await check_user_pin(conn, user_id, pin)
                outcome = check.outcome
                if outcome != "ok":
                    return_code = {"wrong": "wrong_pin", "locked": "pin_locked", "not_set": "pin_not_set"}
                    outcome = return_code[outcome]
            if outcome == "ok":
                row = await conn.fetchrow(query, *args)
    except asyncpg.PostgresError as exc:
        raise _refusal(exc) from None
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None
    if outcome != "ok":
        raise ApiError(423 if outcome == "pin_locked" else 403, outcome, "the PIN was not accepted")
    return row


# -- keys --


def _user_only(request: web.Request) -> uuid.UUID:
    if API_KEY in request:
        raise ApiError(403, "api_key_not_allowed", "keys and payees are managed with the user token")
    return request_user(request)


async def create_key(request: web.Request) -> web.Response:
    user_id = _user_only(request)
    body = validate(ApiKeyCreate, parse_json_object(await read_body(request)))
    if "pay" in body.scopes and body.pin is None:
        raise ApiError(403, "pin_required", "a key that pays needs the PIN")
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    row = await _with_pin(
        request,
        user_id,
        body.pin if "pay" in body.scopes else None,
        "SELECT * FROM api_key_create($1, $2, $3, $4, $5, $6, $7)",
        user_id,
        body.name,
        list(dict.fromkeys(body.scopes)),
        key_hash(token),
        token[:12],
        body.daily_limit,
        body.rate_limit_per_minute,
    )
    out = _key_out(row) | {"key": token}
    return web.json_response(out, status=201)


async def list_keys(request: web.Request) -> web.Response:
    _user_only(request)
    async with user_db(request) as conn:
        rows = await conn.fetch(
            "SELECT id, name, scopes, prefix, daily_limit, rate_limit_per_minute, created_at, last_used_at,"
            " revoked_at FROM api_keys ORDER BY created_at DESC"
        )
        events = await conn.fetch(
            "SELECT key_id, event, detail, at FROM api_key_events ORDER BY at DESC, id DESC LIMIT 200"
        )
    return web.json_response(
        {
            "items": [_key_out(r) for r in rows],
            "events": [
                {
                    "key_id": str(e["key_id"]) if e["key_id"] else None,
                    "event": e["event"],
                    "detail": json.loads(e["detail"]) if isinstance(e["detail"], str) else e["detail"],
                    "at": e["at"].isoformat(),
                }
                for e in events
            ],
        }
    )


async def delete_key(request: web.Request) -> web.Response:
    user_id = _user_only(request)
    key_id = path_id(request)
    try:
        done = await request.app[POOL_KEY].fetchval("SELECT api_key_revoke($1, $2)", user_id, key_id)
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None
    if not done:
        raise ApiError(404, "not_found", "no such key")
    return web.Response(status=204)


# -- trusted payees --


def _payee_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "phone": row["phone"],
        "name": row["name"],
        "confirmed_at": row["confirmed_at"].isoformat(),
    }


async def add_payee(request: web.Request) -> web.Response:
    user_id = _user_only(request)
    body = validate(PayeeCreate, parse_json_object(await read_body(request)))
    phone = _phone(body.phone)
    row = await _with_pin(
        request,
        user_id,
        body.pin,
        "SELECT * FROM trusted_payee_confirm($1, $2, $3)",
        user_id,
        phone,
        body.name,
    )
    return web.json_response(_payee_out(row), status=201)


async def list_payees(request: web.Request) -> web.Response:
    async with user_db(request) as conn:
        rows = await conn.fetch("SELECT id, phone, name, confirmed_at FROM trusted_payees ORDER BY name")
    return web.json_response({"items": [_payee_out(r) for r in rows]})


async def delete_payee(request: web.Request) -> web.Response:
    user_id = _user_only(request)
    payee_id = path_id(request)
    if not await request.app[POOL_KEY].fetchval("SELECT trusted_payee_remove($1, $2)", user_id, payee_id):
        raise ApiError(404, "not_found", "no such payee")
    return web.Response(status=204)


# -- payments --


async def create_payment(request: web.Request) -> web.Response:
    """An idempotent payment by a `pay` key to a trusted payee: the same Idempotency-Key and body answer the
    same (`Idempotent-Replayed: true`), another body 409; the ledger posts it once."""
    key = request.get(API_KEY)
    if key is None:
        raise ApiError(401, "api_key_required", "payments by API need an API key with the pay scope")
    idem = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(idem) <= 255 or not idem.isprintable():
        raise ApiError(
            400, "idempotency_key_required", "send an Idempotency-Key header (1 to 255 characters)"
        )
    body = validate(PaymentCreate, parse_json_object(await read_body(request)))
    phone = _phone(body.phone)
    canonical = json.dumps(
        {"phone": phone, "amount": f"{body.amount:.2f}", "description": body.description}, sort_keys=True
    )
    try:
        result = await request.app[POOL_KEY].fetchval(
            "SELECT api_pay($1, $2, $3, $4, $5, $6)",
            key["id"],
            idem,
            hashlib.sha256(canonical.encode()).hexdigest(),
            phone,
            body.amount,
            body.description,
        )
    except asyncpg.PostgresError as exc:
        raise _refusal(exc) from None
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None
    answer = json.loads(result) if isinstance(result, str) else result
    headers = {"Idempotent-Replayed": "true"} if answer["replayed"] else {}
    return web.json_response(answer["body"], status=answer["status"], headers=headers)


# -- the key on other routes --


def _scope_for(request: web.Request) -> str | None:
    path = request.path
    if request.method == "POST" and path == "/v1/payments":
        return "pay"
    if request.method in ("GET", "HEAD") and path.startswith("/v1/") and not path.startswith(_NOT_FOR_KEYS):
        return "read"
    return None


@web.middleware
async def api_key_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A bearer `op_live_...` is checked (scope, revocation, plan, rate limit) before the route runs; the
    route then acts for the key's owner through `request_user`, under the same row level security."""
    token = bearer_token(request)
    if token is not None and token.startswith(KEY_PREFIX):
        scope = _scope_for(request)
        if scope is None:
            raise ApiError(403, "api_key_not_allowed", "an API key works on reads and POST /v1/payments only")
        try:
            row = await request.app[POOL_KEY].fetchrow(
                "SELECT * FROM api_key_use($1, $2)", key_hash(token), scope
            )
        except asyncpg.PostgresError as exc:
            raise _refusal(exc) from None
        except DATABASE_DOWN:
            raise ApiError(503, "database_unavailable", "the database is busy or unreachable") from None
        request[API_KEY] = dict(row)
        request[API_KEY_USER] = row["user_id"]
    return await handler(request)


def setup(app: web.Application) -> None:
    app.middlewares.append(api_key_auth)
    app.router.add_post("/v1/api-keys", create_key)
    app.router.add_get("/v1/api-keys", list_keys)
    app.router.add_delete("/v1/api-keys/{id}", delete_key)
    app.router.add_post("/v1/payees", add_payee)
    app.router.add_get("/v1/payees", list_payees)
    app.router.add_delete("/v1/payees/{id}", delete_payee)
    app.router.add_post("/v1/payments", create_payment)
