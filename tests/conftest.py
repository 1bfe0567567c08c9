"""Shared fixtures: a real PostgreSQL for every test that needs one.

`DATABASE_URL` set: a fresh database is created on that server for this run and dropped afterwards.
Unset: an embedded PostgreSQL (pgserver) is started in a temporary folder. Either way the run's database
is migrated with the real `sql/` files once; tests isolate themselves by creating their own users.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from ledger.db import create_database, create_pool, drop_database, start_embedded
from ledger.migrate import migrate


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """URL of a PostgreSQL server where this run may create and drop databases.

    The embedded server's folder is a temporary one of its own, not pytest's tmp_path: pytest prunes old
    tmp_path folders, which would pull the data from under a run going on beside this one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return start_embedded(Path(tempfile.mkdtemp(prefix="ongea-test-pg-")), delete_on_exit=True)


@pytest.fixture(scope="session")
def database_url(server_dsn: str) -> Iterator[str]:
    """A migrated database for this test run."""
    name = f"ongea_test_{uuid.uuid4().hex[:12]}"
    url = asyncio.run(create_database(server_dsn, name))
    asyncio.run(migrate(url))
    yield url
    asyncio.run(drop_database(server_dsn, name))


@pytest.fixture
def empty_database(server_dsn: str) -> Iterator[Callable[[], Awaitable[str]]]:
    """Factory of empty, unmigrated databases (dropped after the test)."""
    names: list[str] = []

    async def make() -> str:
        name = f"ongea_empty_{uuid.uuid4().hex[:12]}"
        names.append(name)
        return await create_database(server_dsn, name)

    yield make
    for name in names:
        asyncio.run(drop_database(server_dsn, name))


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, min_size=2, max_size=40)
    yield p
    await p.close()
