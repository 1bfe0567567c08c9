"""PINs: 4 to 6 digits, stored only as an argon2id hash (slow and salted), never in clear."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ledger.models import LedgerError

_hasher = PasswordHasher()


def validate_pin(pin: str) -> str:
    if not isinstance(pin, str) or not (4 <= len(pin) <= 6) or not pin.isascii() or not pin.isdigit():
        raise LedgerError("invalid_pin", "a PIN is 4 to 6 digits")
    return pin


def hash_pin(pin: str) -> str:
    return _hasher.hash(validate_pin(pin))


def verify_pin(pin_hash: str | None, pin: str) -> bool:
    """True when `pin` matches; False for a wrong PIN, a malformed one or no PIN set."""
    if not pin_hash or not isinstance(pin, str):
        return False
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


PinOutcome = Literal["ok", "wrong", "locked", "not_set"]


@dataclass(frozen=True)
class PinCheck:
    """The verdict on one PIN attempt: `attempts_left` counts down to 0; `locked_until` is set when locked."""

    outcome: PinOutcome
    attempts_left: int
    locked_until: datetime | None = None


async def check_user_pin(
    pool: asyncpg.Pool,
    user_id: uuid.UUID,
    pin: str,
    *,
    now: datetime | None = None,
    max_attempts: int = 5,
    lock_seconds: int = 3600,
) -> PinCheck:
    """One PIN attempt of a user, counted towards the one lockout every channel shares (voice and app).

    The hash is checked here (argon2 is Python's), the count in SQL under the profile's row lock, so two
    attempts at once are both counted and a locked user learns nothing about the PIN."""
    pin_hash = await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user_id)
    # argon2 is slow on purpose: verified in a thread so the event loop keeps serving other turns.
    ok = await asyncio.to_thread(verify_pin, pin_hash, pin) if pin_hash else False
    try:
        row = await pool.fetchrow(
            "SELECT * FROM ledger_pin_attempt($1, $2, $3::timestamptz, $4, $5)",
            user_id,
            ok,
            now,
            max_attempts,
            lock_seconds,
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == "OPL01":
            raise LedgerError("user_not_found", "no such user") from None
        raise
    assert row is not None
    return PinCheck(row["outcome"], row["attempts_left"], row["locked_until"])
