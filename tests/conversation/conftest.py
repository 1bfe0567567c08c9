"""Fixtures of the conversation tests: settings, a session driver on the run's real PostgreSQL, and
fresh users."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from ledger.users import create_user
from voice_server.conversation.driver import SessionDriver
from voice_server.settings import Settings

_phones = itertools.count(random.Random().randrange(0, 10_000_000) * 10)

MakeUser = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data: Path = tmp_path_factory.mktemp("conv-data")
    return Settings(database_url=database_url, data_dir=data)  # type: ignore[call-arg]


@pytest.fixture
def driver(pool: asyncpg.Pool, settings: Settings) -> SessionDriver:
    return SessionDriver(pool, settings)


@pytest.fixture
def make_user(pool: asyncpg.Pool) -> MakeUser:
    async def make(
        balance: str = "5000.00", plan: str = "pro", pin: str | None = None, mama: bool = True
    ) -> uuid.UUID:
        phone = f"2547{next(_phones) % 100_000_000:08d}"
        user = await create_user(pool, phone, balance=Decimal(balance), plan=plan, pin=pin)
        if mama:
            await pool.execute(
                "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, $2, $3, $4)",
                user.user_id,
                "Mary Wambui",
                "254733444555",
                "Mama",
            )
        return user.user_id

    return make
