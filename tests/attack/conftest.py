"""The attacker's view: a real `ongea-pesa serve` process on its own port and database, real HTTP, and a
second database granted as Supabase grants a project (its API roles get every new table, function and
sequence by default), where SQL runs as PostgREST would run it for a user."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from ledger.db import create_database, drop_database
from ledger.migrate import migrate
from tests.app_api.conftest import BearerHttp, User
from tests.serving import ServeProcess

JWT_SECRET = "attack-test-jwt-secret-" + "k" * 24
STRIPE_SECRET = "whsec_attack_test_secret"

# What a Supabase project has before any migration of ours: its API roles, and default privileges that
# grant them everything created in `public` (supabase/postgres: migrations/db/init-scripts).
SUPABASE_GRANTS = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
"""


async def _ensure_role(conn: asyncpg.Connection, name: str) -> None:
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
        try:
            await conn.execute(f"CREATE ROLE {name} NOLOGIN NOINHERIT")
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # another run on the shared server made it first


@pytest.fixture(scope="session")
def supabase_url(server_dsn: str) -> Iterator[str]:
    """A database migrated on top of Supabase's default grants."""
    name = f"ongea_attack_{uuid.uuid4().hex[:12]}"

    async def make() -> str:
        url = await create_database(server_dsn, name)
        conn = await asyncpg.connect(url)
        try:
            for role in ("anon", "authenticated", "service_role"):
                await _ensure_role(conn, role)
            await conn.execute(SUPABASE_GRANTS)
        finally:
            await conn.close()
        await migrate(url)
        return url

    yield asyncio.run(make())
    asyncio.run(drop_database(server_dsn, name))


@pytest.fixture(scope="session")
def attack_url(server_dsn: str) -> Iterator[str]:
    """The served process's own database: its payout worker and sweeper must never act on the rows other
    tests of the same run write (they share the run's database)."""
    name = f"ongea_attack_srv_{uuid.uuid4().hex[:12]}"

    async def make() -> str:
        url = await create_database(server_dsn, name)
        await migrate(url)
        return url

    yield asyncio.run(make())
    asyncio.run(drop_database(server_dsn, name))


@pytest.fixture(scope="session")
async def db(attack_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The served process's database, as the server's own role (to set up and check rows)."""
    pool = await asyncpg.create_pool(attack_url, min_size=1, max_size=6)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def supabase_pool(supabase_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(supabase_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@dataclass
class Reply:
    status: int
    body: Any
    content_type: str


class Client(BearerHttp):
    """Raw HTTP against the served process, as one user or as nobody."""

    async def call(
        self,
        method: str,
        path: str,
        user: User | None = None,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        bearer = token if token is not None else (user.token if user is not None else None)
        if json_body is not None:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        status, content_type, text = await self.send(method, path, bearer, data=data, headers=sent)
        body = json.loads(text) if text else None
        return Reply(status, body, content_type)


@pytest.fixture(scope="session")
def served(attack_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ongea-pesa serve` as an operator runs it, on its own database."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "STRIPE_"))}
    env = {
        **clean,
        "ONGEA_DATA_DIR": str(tmp_path_factory.mktemp("attack-data")),
        "ONGEA_JWT_SECRET": JWT_SECRET,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "ONGEA_LOG_LEVEL": "INFO",
        "ONGEA_DB_POOL_MIN": "1",
        "ONGEA_DB_POOL_MAX": "4",  # the PostgreSQL server is shared
    }
    server = ServeProcess(["--database-url", attack_url], env, limit=180)  # a hang guard
    yield server.base
    server.stop()
    log = server.output()
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture
async def client(served: str) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http:
        yield Client(http, served)


@pytest.fixture
def make_user(db: asyncpg.Pool) -> Any:
    async def make(balance: str = "5000.00", plan: str = "free", pin: str | None = None) -> User:
        return await User.create(db, JWT_SECRET, balance, plan, pin)

    return make
