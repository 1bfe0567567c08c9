"""User-facing reads under row level security.

Inside one transaction on a pooled connection the role becomes `authenticated` and the JWT claims carry the
user's id, both transaction-scoped (`set_config(..., true)`): the founding policies then decide which rows are
visible, with no `WHERE user_id = ...` to forget, and the connection goes back to the pool with its own
role."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg


@asynccontextmanager
async def as_user(
    pool: asyncpg.Pool, user_id: uuid.UUID, *, readonly: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """A connection acting as `user_id` (role authenticated) until the block ends; read-only unless asked
    (the app's own writes: the column grants and policies still decide what the user may change)."""
    claims = json.dumps({"sub": str(uuid.UUID(str(user_id))), "role": "authenticated"})
    async with pool.acquire() as conn, conn.transaction(readonly=readonly):
        await conn.execute(
            "SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)",
            claims,
        )
        yield conn


def _records(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


async def user_transactions(pool: asyncpg.Pool, user_id: uuid.UUID, limit: int = 20) -> list[dict[str, Any]]:
    """The user's latest transactions, newest first."""
    async with as_user(pool, user_id) as conn:
        return _records(
            await conn.fetch(
                """SELECT id, type, amount, fee, status, phone, till, paybill, account, agent, store,
                          bank_code,
                          voice_verified, mpesa_transaction_id, error_message, version, created_at,
                          confirmed_at, completed_at
                   FROM transactions ORDER BY created_at DESC, id LIMIT $1""",
                max(1, min(int(limit), 200)),
            )
        )


async def user_balance_history(
    pool: asyncpg.Pool, user_id: uuid.UUID, limit: int = 50
) -> list[dict[str, Any]]:
    async with as_user(pool, user_id) as conn:
        return _records(
            await conn.fetch(
                """SELECT id, transaction_id, previous_balance, new_balance, change_amount, reason, created_at
                   FROM balance_history ORDER BY created_at DESC, id LIMIT $1""",
                max(1, min(int(limit), 500)),
            )
        )


async def user_contacts(pool: asyncpg.Pool, user_id: uuid.UUID) -> list[dict[str, Any]]:
    async with as_user(pool, user_id) as conn:
        return _records(
            await conn.fetch(
                """SELECT id, name, phone_number, nickname, relationship, default_amount, favorite,
                          transaction_count, total_sent
                   FROM contacts ORDER BY favorite DESC, name"""
            )
        )


async def user_profile(pool: asyncpg.Pool, user_id: uuid.UUID) -> dict[str, Any] | None:
    async with as_user(pool, user_id) as conn:
        row = await conn.fetchrow(
            """SELECT id, phone_number, mpesa_number, wallet_balance, held_balance,
                      wallet_balance - held_balance AS available, mpesa_auto_topup,
                      mpesa_auto_topup_threshold, mpesa_auto_topup_amount, default_payment_method,
                      pin_set, created_at
               FROM profiles"""
        )
        return dict(row) if row is not None else None
