"""Fixtures of the ledger tests: a `Ledger` on the run's migrated database, and a factory of fresh users
(unique phone numbers, so tests never share a wallet)."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import asyncpg
import pytest

from ledger.service import Ledger
from ledger.users import create_user

_phones = itertools.count(random.Random().randrange(0, 10_000_000) * 10)

MakeUser = Callable[..., Awaitable[uuid.UUID]]


def fresh_phone() -> str:
    """A valid Kenyan mobile number not used yet in this run (07XX with random digits)."""
    n = next(_phones) % 100_000_000
    return f"2547{n:08d}"


@pytest.fixture
def ledger(pool: asyncpg.Pool) -> Ledger:
    return Ledger(pool)


@pytest.fixture
def make_user(pool: asyncpg.Pool) -> MakeUser:
    async def make(
        balance: str | Decimal = "10000.00", plan: str = "pro", pin: str | None = None, **profile: object
    ) -> uuid.UUID:
        user = await create_user(pool, fresh_phone(), balance=Decimal(str(balance)), plan=plan, pin=pin)
        if profile:
            sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(profile))
            await pool.execute(f"UPDATE profiles SET {sets} WHERE id = $1", user.user_id, *profile.values())
        return user.user_id

    return make
