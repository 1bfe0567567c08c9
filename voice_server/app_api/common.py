"""What every handler of the app's API shares: the user's row-level-security connection, bodies read with
a size limit and validated by the shared models, and the one way amounts and ids are turned into answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ValidationError

from ledger.reads import as_user
from voice_server.appkeys import POOL_KEY
from voice_server.auth import profile_missing, request_user
from voice_server.http_errors import ApiError

M = TypeVar("M", bound=BaseModel)

# The database cannot be reached or takes no more connections: the app should retry, not report a bug.
DATABASE_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
)


@asynccontextmanager
async def user_db(request: web.Request, *, write: bool = False) -> AsyncIterator[asyncpg.Connection]:
    """The request's user (from the token, 401 otherwise) on a connection in role `authenticated` with
    the user's claims, for one transaction: the founding policies confine every statement to their rows.
    A well-signed token of a user without a profile (on Supabase, anyone who signed up before the profile
    was made, or whose profile was deleted) is a 403 `profile_missing` on every route, reads included."""
    user_id = request_user(request)
    try:
        async with as_user(request.app[POOL_KEY], user_id, readonly=not write) as conn:
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM profiles)"):
                raise profile_missing()
            yield conn
    except DATABASE_DOWN:
        raise ApiError(
            503, "database_unavailable", "the database is busy or unreachable: try again"
        ) from None


async def read_body(request: web.Request) -> bytes:
    """The raw body, already read by the app's middleware within its time and size limits (a route that
    takes more than 64 KiB says so with `voice_server.bodies.allow_larger_body`)."""
    return await request.read()


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body is a JSON object")
    return body


def validate(model: type[M], data: Any) -> M:
    """`data` as `model`, or a 400 naming the first problem (with the validator's own code when it has
    one: invalid_amount, weak_pin...)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"] if part not in ("root",))[:100]
        ctx = first.get("ctx") or {}
        if ctx.get("api"):
            raise ApiError(400, first["type"], first["msg"]) from None
        if first["type"] == "extra_forbidden":
            raise ApiError(400, "unknown_field", f"{where} cannot be set here") from None
        message = f"{where}: {first['msg']}" if where else first["msg"]
        raise ApiError(400, "invalid_request", message) from None


async def read_model(request: web.Request, model: type[M]) -> M:
    return validate(model, parse_json_object(await read_body(request)))


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def path_id(request: web.Request, name: str = "id") -> uuid.UUID:
    """A row id from the path (after the token: no answer about rows before that); one that is not a UUID
    names no row of anyone's, so it is a 404 too."""
    request_user(request)
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise ApiError(404, "not_found", "no such item") from None


def answer(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)
