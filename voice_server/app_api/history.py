"""History: `GET /v1/transactions[/{id}]`, `GET /v1/balance-history`, `GET /v1/topups/{id}`: pages newest
first by keyset (a cursor, so a page never repeats or skips a row when new ones arrive)."""

from __future__ import annotations

from typing import get_args

from aiohttp import web

from voice_server.app_api import queries
from voice_server.app_api.business import business_db
from voice_server.app_api.common import answer, path_id, user_db
from voice_server.app_api.models import (
    BalanceHistoryPage,
    TransactionPage,
    TransactionStatusName,
    TransactionTypeName,
)
from voice_server.appkeys import POOL_KEY
from voice_server.http_errors import ApiError

STATUSES = get_args(TransactionStatusName)
TYPES = get_args(TransactionTypeName)


def _limit(request: web.Request, default: int, most: int) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return default
    digits = raw.lstrip("0")  # read whole: zeros in front once hid a size past the maximum
    if not (raw.isascii() and raw.isdigit()) or not (len(digits) <= 6 and 1 <= int(digits or "0") <= most):
        raise ApiError(400, "invalid_limit", f"limit is a whole number from 1 to {most}")
    return int(digits)


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise ApiError(400, f"invalid_{name}", f"{name} is one of {', '.join(allowed)}")
    return value


async def list_transactions(request: web.Request) -> web.Response:
    status = _choice(request, "status", STATUSES)
    type_ = _choice(request, "type", TYPES)
    limit = _limit(request, 20, 100)
    before = request.query.get("before") or None
    async with user_db(request) as conn:
        items, cursor = await queries.transactions_page(
            conn, status=status, type_=type_, before=before, limit=limit
        )
    return answer(TransactionPage(items=items, next_before=cursor))


async def get_transaction(request: web.Request) -> web.Response:
    tx_id = path_id(request)
    async with user_db(request) as conn:
        row = await conn.fetchrow(
            f"SELECT {queries.TRANSACTION_COLUMNS} FROM transactions WHERE id = $1", tx_id
        )
    if row is None:
        raise ApiError(404, "not_found", "no such transaction")
    return answer(queries.transaction(row))


async def balance_history(request: web.Request) -> web.Response:
    limit = _limit(request, 50, 200)
    before = request.query.get("before") or None
    async with user_db(request) as conn:
        items, cursor = await queries.balance_page(conn, before=before, limit=limit)
    return answer(BalanceHistoryPage(items=items, next_before=cursor))


async def get_topup(request: web.Request) -> web.Response:
    """A top-up's fate: `pending` until M-Pesa's callback, then `completed` (credited) or `failed`. A
    business wallet's top-up is read under its members' policy, with the business named as for its
    payments; anyone else gets the same 404 as for an id that does not exist."""
    topup_id = path_id(request)
    query = f"SELECT {queries.TOPUP_COLUMNS} FROM mpesa_transactions WHERE id = $1"
    async with user_db(request) as conn:
        row = await conn.fetchrow(query, topup_id)
    if row is None:
        business = await request.app[POOL_KEY].fetchval(
            """SELECT m.user_id FROM mpesa_transactions m JOIN businesses b ON b.id = m.user_id
               WHERE m.id = $1""",
            topup_id,
        )
        if business is not None:
            async with business_db(request, business) as conn:
                row = await conn.fetchrow(query, topup_id)
    if row is None:
        raise ApiError(404, "not_found", "no such top-up")
    return answer(queries.topup(row))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/transactions", list_transactions)
    app.router.add_get("/v1/transactions/{id}", get_transaction)
    app.router.add_get("/v1/balance-history", balance_history)
    app.router.add_get("/v1/topups/{id}", get_topup)
