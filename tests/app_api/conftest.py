"""The app API as the phone app meets it: the real aiohttp application listening on a real port, real HTTP
from an aiohttp client, the run's real PostgreSQL, users made by `ledger.users.create_user`."""

from __future__ import annotations

import json as json_module
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
    """A user as the app API knows them: id, phone and a signed bearer token (tests/attack's too)."""

    id: uuid.UUID
    phone: str
    token: str

    @classmethod
    async def create(
        cls, pool: asyncpg.Pool, jwt_secret: str, balance: str, plan: str, pin: str | None
    ) -> User:
        """A new user in `pool`'s database with a token signed by `jwt_secret` for an hour."""
        made = await create_user(pool, fresh_phone(), balance=Decimal(balance), plan=plan, pin=pin)
        return cls(made.user_id, made.phone, mint_user_token(jwt_secret, made.user_id, ttl_seconds=3600))


class BearerHttp:
    """Raw HTTP to one base URL with an optional bearer token: the part the in-process `Api` here and
    tests/attack's `Client` of the served process share (they read the answer differently)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def send(
        self,
        method: str,
        path: str,
        bearer: str | None,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        """(status, content type, body text)."""
        sent = dict(headers or {})
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        async with self.http.request(method, self.base + path, json=json, data=data, headers=sent) as r:
            return r.status, r.content_type, await r.text()


class Api(BearerHttp):
    """An HTTP client of the app API that speaks as one user (or as nobody)."""

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
        bearer = user.token if user is not None else None
        status, content_type, text = await self.send(
            method, path, bearer, json=json, data=data, headers=headers
        )
        if not text:
            return Reply(status, None)
        assert content_type == "application/json", text
        return Reply(status, json_module.loads(text))


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
        return await User.create(pool, JWT_SECRET, balance, plan, pin)

    return make


@pytest.fixture
def ledger(pool: asyncpg.Pool) -> Ledger:
    return Ledger(pool)
