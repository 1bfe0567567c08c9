"""Creating users: a row in `auth.users`, whose sign-up trigger (sql/0022) adds the profile, the active
subscription and the opening `balance_history` row, all in one database transaction (a half-created user
could never be paid into or out of)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from ledger.models import LedgerError, to_amount
from ledger.phones import normalize_ke_phone
from ledger.pins import hash_pin

PLANS = ("free", "basic", "pro", "business")


@dataclass(frozen=True)
class NewUser:
    user_id: uuid.UUID
    phone: str
    balance: Decimal
    plan: str


async def create_user(
    pool: asyncpg.Pool | asyncpg.Connection,
    phone: str,
    *,
    balance: Decimal | str | int = Decimal("0.00"),
    plan: str = "free",
    pin: str | None = None,
    mpesa_number: str | None = None,
) -> NewUser:
    """Creates a user; `LedgerError` (invalid_phone, invalid_amount, invalid_plan, invalid_pin,
    phone_taken) when it cannot, and then nothing is written."""
    number = normalize_ke_phone(phone)
    mpesa = normalize_ke_phone(mpesa_number) if mpesa_number else number
    opening = to_amount(balance)
    if opening < 0:
        raise LedgerError("invalid_amount", "the opening balance cannot be negative")
    if opening > Decimal("9999999999.99"):
        raise LedgerError("invalid_amount", "the opening balance is too large")
    if plan not in PLANS:
        raise LedgerError("invalid_plan", f"plan is one of {', '.join(PLANS)}")
    pin_hash = await asyncio.to_thread(hash_pin, pin) if pin is not None else None
    user_id = uuid.uuid4()

    # Through the sign-up trigger on auth.users (sql/0022), as Supabase Auth's sign-ups go: the opening
    # balance, plan and PIN ride along in a setting local to this transaction.
    new_user = json.dumps(
        {"opening_balance": str(opening), "plan": plan, "pin_hash": pin_hash, "mpesa_number": mpesa}
    )

    async def write(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT set_config('ongea.new_user', $1, true)", new_user)
            await conn.execute("INSERT INTO auth.users (id, phone) VALUES ($1, $2)", user_id, number)
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM profiles WHERE id = $1)", user_id):
                raise LedgerError("invalid_phone", f"sign-up made no wallet for {number}")

    try:
        if isinstance(pool, asyncpg.Pool):
            async with pool.acquire() as conn:
                await write(conn)
        else:
            await write(pool)
    except asyncpg.UniqueViolationError:
        raise LedgerError("phone_taken", f"a user with phone {number} already exists") from None
    except asyncpg.NumericValueOutOfRangeError:
        raise LedgerError("invalid_amount", "the opening balance is too large") from None
    return NewUser(user_id, number, opening, plan)


async def set_pin(pool: asyncpg.Pool, user_id: uuid.UUID, pin: str, *, first: bool = False) -> None:
    """`first`: only if no PIN is set, in the same statement, so two first PINs racing cannot both be told
    "PIN set" (the later one is refused: a change needs the current PIN)."""
    pin_hash = await asyncio.to_thread(hash_pin, pin)  # argon2 is slow on purpose: not on the event loop
    status = await pool.execute(
        "UPDATE profiles SET pin_hash = $2 WHERE id = $1 AND (NOT $3 OR pin_hash IS NULL)",
        user_id,
        pin_hash,
        first,
    )
    if status != "UPDATE 1":
        if first and await pool.fetchval("SELECT true FROM profiles WHERE id = $1", user_id):
            raise LedgerError("pin_already_set", "a PIN was set meanwhile: give current_pin to change it")
        raise LedgerError("user_not_found", "no such user")
