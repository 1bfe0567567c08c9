"""PINs: 4 to 6 digits, stored only as an argon2id hash (slow and salted), never in clear."""

from __future__ import annotations

import asyncio
import itertools
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


def weak_pin_reason(pin: str) -> str | None:
    """Why a PIN is too easy to guess: all one digit, a run up or down (1234, 9876, 34567), or a short
    block repeated (1212, 123123), among the first an attacker tries. The one rule of `PUT /v1/me/pin` and
    `ongea-pesa user add --pin` (development users made by tests may still be given any 4-6 digits)."""
    if len(set(pin)) == 1:
        return "a PIN cannot be one digit repeated"
    if any(len(pin) % n == 0 and pin == pin[:n] * (len(pin) // n) for n in (2, 3)):
        return "a PIN cannot be a few digits repeated like 1212 or 123123"
    steps = {int(b) - int(a) for a, b in itertools.pairwise(pin)}
    if steps in ({1}, {-1}):
        return "a PIN cannot be a run of digits like 1234 or 9876"
    return None


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
    pool: asyncpg.Pool | asyncpg.Connection,
    user_id: uuid.UUID,
    pin: str,
    *,
    now: datetime | None = None,
) -> PinCheck:
    """One PIN attempt of a user, counted towards the one lockout every channel shares (voice and app).

    The hash is checked here (argon2 is Python's), the count in SQL under the profile's row lock, so two
    attempts at once are both counted and a locked user learns nothing about the PIN. The numbers (attempts,
    lockout) are the ledger's (`ledger_rules`). A right PIN leaves, in the caller's database transaction, the
    evidence that lets `ledger_confirm` post one payment that needs the PIN (see sql/0019)."""
    pin_hash = await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user_id)
    # argon2 is slow on purpose: verified in a thread so the event loop keeps serving other turns.
    ok = await asyncio.to_thread(verify_pin, pin_hash, pin) if pin_hash else False
    try:
        row = await pool.fetchrow(
            "SELECT * FROM ledger_pin_attempt($1, $2, $3::timestamptz)", user_id, ok, now
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == "OPL01":
            raise LedgerError("user_not_found", "no such user") from None
        raise
    assert row is not None
    return PinCheck(row["outcome"], row["attempts_left"], row["locked_until"])
