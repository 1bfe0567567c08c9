"""`GET/PATCH /v1/me` and `PUT /v1/me/pin`: the wallet screen and the settings a user may change."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from ledger.models import LedgerError
from ledger.pins import check_user_pin
from ledger.reads import as_user
from ledger.users import set_pin
from voice_server.app_api import queries
from voice_server.app_api.common import answer, read_model, user_db
from voice_server.app_api.models import PinChange, PinChanged, ProfilePatch
from voice_server.appkeys import POOL_KEY, SETTINGS_KEY
from voice_server.auth import UserClaims, profile_missing, request_claims, request_user
from voice_server.http_errors import ApiError


async def get_me(request: web.Request) -> web.Response:
    async with user_db(request) as conn:
        me = await queries.profile(conn)
    if me is None:
        raise profile_missing()
    return answer(me)


async def patch_me(request: web.Request) -> web.Response:
    request_user(request)  # a missing token is a 401 before the body is even read
    patch = await read_model(request, ProfilePatch)
    # Column names come from the model's own fields (unknown fields were refused), values are parameters;
    # the grants of 0005 would refuse a balance or PIN column anyway.
    changes = {
        name: getattr(patch, name) for name in patch.model_fields_set if getattr(patch, name) is not None
    }
    async with user_db(request, write=True) as conn:
        if changes:
            sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=1))
            try:
                status = await conn.execute(f"UPDATE profiles SET {sets}", *changes.values())
            except asyncpg.CheckViolationError:
                raise ApiError(400, "invalid_amount", "an auto top-up must be a payable amount") from None
            if status != "UPDATE 1":
                raise profile_missing()
        me = await queries.profile(conn)
    if me is None:
        raise profile_missing()
    return answer(me)


def _locked(until: datetime) -> ApiError:
    when = until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ApiError(423, "pin_locked", f"too many wrong PINs: the PIN cannot be used or changed until {when}")


class PinChanges:
    """What keeps `PUT /v1/me/pin` from being a lever on the server: each user may ask
    `pin_change_rate_limit` times per `pin_change_rate_window_seconds` (on this process), and argon2 (slow on
    purpose, run in threads) hashes at most `HASHING_AT_ONCE` PINs at a time, so a flood of PIN changes,
    from one user or many, leaves the other threads and the event loop to everyone else."""

    HASHING_AT_ONCE = 2

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.asked: dict[uuid.UUID, deque[float]] = {}
        self.hashing = asyncio.Semaphore(self.HASHING_AT_ONCE)

    def allow(self, user_id: uuid.UUID) -> bool:
        now = self.clock()
        if len(self.asked) > 10_000:  # forget users whose window has passed
            self.asked = {u: q for u, q in self.asked.items() if q and q[-1] > now - self.window}
        times = self.asked.setdefault(user_id, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True


PIN_CHANGES = web.AppKey("pin_changes", PinChanges)


async def put_pin(request: web.Request) -> web.Response:
    """Sets the PIN, or changes it given the current one. A wrong current PIN is one attempt of the shared
    lockout (the same count as PINs said in a voice payment), so this cannot be used to guess it. The first
    PIN needs a fresh sign-in: it is what unlocks payments past the allowance, so a stolen token must not be
    able to choose it (API keys never reach this route)."""
    claims = request_claims(request)
    body = await read_model(request, PinChange)
    changes = request.app[PIN_CHANGES]
    if not changes.allow(claims.user_id):
        raise ApiError(429, "rate_limited", "too many PIN changes; wait a few minutes and try again")
    async with changes.hashing:
        return await _put_pin(request, claims, body)


async def _put_pin(request: web.Request, claims: UserClaims, body: PinChange) -> web.Response:
    pool = request.app[POOL_KEY]
    user_id = claims.user_id
    async with as_user(pool, user_id) as conn:
        row = await conn.fetchrow("SELECT pin_set, pin_locked_until FROM profiles")
    if row is None:
        raise profile_missing()
    if row["pin_locked_until"] is not None and row["pin_locked_until"] > datetime.now(UTC):
        raise _locked(row["pin_locked_until"])
    fresh_for = request.app[SETTINGS_KEY].first_pin_sign_in_seconds
    if not row["pin_set"] and time.time() - claims.signed_in_at > fresh_for:
        raise ApiError(
            403,
            "fresh_sign_in_required",
            f"setting your first PIN needs a fresh sign-in: sign in again, then set it within "
            f"{fresh_for // 60} minutes",
        )
    if row["pin_set"]:
        if body.current_pin is None:
            raise ApiError(400, "current_pin_required", "give current_pin to change the PIN")
        check = await check_user_pin(pool, user_id, body.current_pin)
        if check.outcome == "locked":
            assert check.locked_until is not None
            raise _locked(check.locked_until)
        if check.outcome == "wrong":
            raise ApiError(
                403,
                "wrong_pin",
                f"the current PIN is wrong: {check.attempts_left} more wrong PINs lock PIN use for a while",
            )
    try:
        await set_pin(pool, user_id, body.pin, first=not row["pin_set"])
    except LedgerError as exc:
        if exc.code != "pin_already_set":
            raise
        raise ApiError(409, exc.code, exc.message) from None
    message = "PIN changed" if row["pin_set"] else "PIN set"
    return answer(PinChanged(pin_set=True, message=message))


def setup(app: web.Application) -> None:
    settings = app[SETTINGS_KEY]
    app[PIN_CHANGES] = PinChanges(settings.pin_change_rate_limit, settings.pin_change_rate_window_seconds)
    app.router.add_get("/v1/me", get_me)
    app.router.add_patch("/v1/me", patch_me)
    app.router.add_put("/v1/me/pin", put_pin)
