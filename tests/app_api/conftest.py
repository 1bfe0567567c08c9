"""The app API as the phone app meets it: the real aiohttp application listening on a real port, real HTTP
from an aiohttp client, the run's real PostgreSQL, users made by `ledger.users.create_user`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from pydantic import SecretStr

from ledger.service import Ledger
from ledger.users import create_user
from tests.ledger.conftest import fresh_phone
from voice_server.app import create_app
from voice_server.auth import mint_user_token
from voice_server.settings import Settings

JWT_SECRET = "app-api-test-jwt-secret-" + "j" * 24
STRIPE_SECRET = "whsec_app_api_test_secret"


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class User:
    id: uuid.UUID
    phone: str
    token: str


class Api:
    """An HTTP client of the app API that speaks as one user (or as nobody)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        user: User | None = None,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {user.token}"
        async with self.http.request(method, self.base + path, json=json, data=data, headers=sent) as r:
            text = await r.text()
            if not text:
                return Reply(r.status, None)
            assert r.content_type == "application/json", text
            return Reply(r.status, await r.json())


@pytest.fixture(scope="session")
def api_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("app-api-data")
    return Settings().model_copy(
        update={
            "database_url": database_url,
            "data_dir": data_dir,
            "jwt_secret": SecretStr(JWT_SECRET),
            "stripe_webhook_secret": SecretStr(STRIPE_SECRET),
            "pin_max_attempts": 5,
            "pin_lockout_seconds": 3600,
        }
    )


@pytest.fixture(scope="session")
async def api(pool: asyncpg.Pool, api_settings: Settings) -> AsyncIterator[Api]:
    app = create_app(api_settings, pool)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as http:
        yield Api(http, f"http://{host}:{port}")
    await runner.cleanup()


MakeApiUser = Callable[..., Awaitable[User]]


@pytest.fixture
def make_api_user(pool: asyncpg.Pool) -> MakeApiUser:
    async def make(balance: str = "5000.00", plan: str = "basic", pin: str | None = None) -> User:
        made = await create_user(pool, fresh_phone(), balance=Decimal(balance), plan=plan, pin=pin)
        token = mint_user_token(JWT_SECRET, made.user_id, ttl_seconds=3600)
        return User(made.user_id, made.phone, token)

    return make


@pytest.fixture
def ledger(pool: asyncpg.Pool) -> Ledger:
    return Ledger(pool)
