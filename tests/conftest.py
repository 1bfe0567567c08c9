"""Shared fixtures: a real PostgreSQL for every test that needs one.

`DATABASE_URL` set: a fresh database is created on that server for this run and dropped afterwards.
Unset: an embedded PostgreSQL (pgserver) is started in a temporary folder. Either way the run's database
is migrated with the real `sql/` files; tests isolate themselves by creating their own users.

Under pytest-xdist (pyproject's addopts) every fixture here runs once per worker: each worker has its own
database, and without `DATABASE_URL` its own embedded server. The migrations run once per run and server:
into a template database, of which each worker's database is a copy (`CREATE DATABASE ... TEMPLATE`).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from ledger.db import create_database, create_pool, drop_database, start_embedded, with_database
from ledger.migrate import migrate
from tests.serving import SHARED, SharedServes, shared_serve_keys

# One name for the whole run, controller and workers alike (workers inherit the controller's environment):
# the template database of this run is named by it.
RUN_ID = "PYTEST_ONGEA_RUN_ID"
os.environ.setdefault(RUN_ID, uuid.uuid4().hex[:12])


def _template_name(server_dsn: str) -> str:
    """This run's template database on that server (embedded servers differ by worker, so by URL)."""
    server = hashlib.sha256(server_dsn.encode()).hexdigest()[:8]
    return f"ongea_tmpl_{os.environ[RUN_ID]}_{server}"


def _migrated_copy(server_dsn: str, name: str) -> str:
    """A migrated database `name`: a copy of this run's template, which the first worker to get here
    migrates from the `sql/` files (the others wait on the lock; migrating every file once per worker cost
    each worker seconds of PostgreSQL). The template is dropped by the run's last `pytest_sessionfinish`."""
    template = _template_name(server_dsn)

    async def copy() -> None:
        conn = await asyncpg.connect(server_dsn)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", template):
                await migrate(await create_database(server_dsn, template))
            # (Both names are made here of letters, digits and underscores: nothing to quote but the name.)
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()

    with open(Path(tempfile.gettempdir()) / f"{template}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while migrating and while copying (no one else connected)
        asyncio.run(copy())
    return with_database(server_dsn, name)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The run's template, dropped once by the process that ends last: the controller under xdist (its
    workers are done by then), else the one process. An embedded server's goes with its folder."""
    url = os.environ.get("DATABASE_URL")
    if url and not hasattr(session.config, "workerinput"):
        asyncio.run(drop_database(url, _template_name(url)))
        (Path(tempfile.gettempdir()) / f"{_template_name(url)}.lock").unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Why each rerun test failed the first time (pyproject's `--reruns 1` lists only their names): a
    rerun is a timing to look into, so a CI log must say what ran out."""
    reports = terminalreporter.stats.get("rerun", [])
    if not reports:
        return
    terminalreporter.section("why the rerun tests failed the first time")
    for report in reports:
        text = str(getattr(report, "longrepr", "") or "")
        terminalreporter.line(f"--- {report.nodeid} ({report.when}), last lines:")
        terminalreporter.line("\n".join(text.splitlines()[-60:]))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """For pytest-xdist's `--dist loadgroup` (pyproject's addopts): the tests of a file that share a
    module-scoped fixture (a browser, a served process with the file's own settings) run on one worker, so
    it starts once; every other test goes to whichever worker is free.

    The tests that use a shared server (`tests.serving.SHARED`) are put first, those of one server one after
    another (otherwise in their order), so that each worker starts it about once before it moves on."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        defs = (d for ds in info.name2fixturedefs.values() for d in ds)
        if any(d.scope == "module" for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))

    def shared_first(item: pytest.Item) -> tuple[int, list[str]]:
        keys = sorted(shared_serve_keys(getattr(item, "_fixtureinfo", None)))
        return (0, keys) if keys else (1, keys)

    items.sort(key=shared_first)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before anything of a test is set up: the shared servers it does not use are stopped (see
    `tests.serving.SharedServes`)."""
    SHARED.keep_only(shared_serve_keys(getattr(item, "_fixtureinfo", None)))


@pytest.fixture(scope="session")
def shared_serves() -> Iterator[SharedServes]:
    """The session's shared servers (each shared-server fixture asks for this), all stopped at its end."""
    yield SHARED
    SHARED.keep_only(set())


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """URL of a PostgreSQL server where this run may create and drop databases.

    The embedded server's folder is a temporary one of its own, not pytest's tmp_path: pytest prunes old
    tmp_path folders, which would pull the data from under a run going on beside this one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    # One start at a time: run as root, pgserver first creates its system user with `useradd`, and two
    # workers doing so at once on a fresh machine make one of them fail.
    with open(Path(tempfile.gettempdir()) / "ongea-test-pg.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return start_embedded(Path(tempfile.mkdtemp(prefix="ongea-test-pg-")), delete_on_exit=True)


@pytest.fixture(scope="session")
def database_url(server_dsn: str) -> Iterator[str]:
    """A migrated database for this test run."""
    name = f"ongea_test_{uuid.uuid4().hex[:12]}"
    url = _migrated_copy(server_dsn, name)
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
    # asyncpg's close waits, without end, for every connection a test still holds: a connection left
    # acquired (a test cancelled mid-query) must not hang the whole run at its last teardown.
    try:
        await asyncio.wait_for(p.close(), timeout=60)
    except TimeoutError:
        warnings.warn("the run's pool still had connections held at the end; terminated", stacklevel=1)
        p.terminate()
