"""PINs: 4 to 6 digits, stored only as an argon2id hash (slow and salted), never in clear."""

from __future__ import annotations

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
