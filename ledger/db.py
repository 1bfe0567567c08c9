"""Connections: the embedded PostgreSQL for zero-configuration runs, and asyncpg pools."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or reuse) the embedded PostgreSQL under `data_dir/pg` and return its URL.

    pgserver shares one server between processes that use the same directory and stops it when the last
    one exits, so the server, the CLI and a second test run can all point at the same data.
    `delete_on_exit`: `data_dir` itself holds the data and is removed at exit (throw-away test servers).
    """
    with warnings.catch_warnings():  # platformdirs, under pgserver, warns when XDG_RUNTIME_DIR is unset
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from pgserver.postgres_server import get_server  # lazily: only needed when DATABASE_URL is unset

        pgdata = (data_dir if delete_on_exit else data_dir / "pg").resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        server = get_server(pgdata, cleanup_mode="delete" if delete_on_exit else "stop")
    uri: str = server.get_uri()
    log.info("embedded PostgreSQL running in %s", pgdata)
    return uri


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    return database_url if database_url else start_embedded(data_dir)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON columns come back as Python objects, and go in from Python objects.
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def light_reset(conn: asyncpg.Connection) -> None:
    """The pools' `reset=`: asyncpg has already rolled back any open transaction by then, and our code keeps
    no session state (RLS role and claims are `set_config(..., true)`, transaction-scoped), so the default
    `RESET ALL; UNLISTEN *; ...` would only cost one more round trip per ledger operation."""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20, **kwargs: Any) -> asyncpg.Pool:
    kwargs.setdefault("reset", light_reset)
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


def with_database(dsn: str, dbname: str) -> str:
    """The same server URL, pointing at another database (works for socket-style pgserver URLs too)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + dbname))


async def _on_server(dsn: str, statement: str, dbname: str) -> None:
    """Run a database-level statement (it cannot take parameters, so the name is checked instead)."""
    if not dbname.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name: {dbname!r}")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement.format(name=f'"{dbname}"'))
    finally:
        await conn.close()


async def create_database(dsn: str, dbname: str) -> str:
    """Create an empty database on the server behind `dsn`; return its URL."""
    await _on_server(dsn, "CREATE DATABASE {name}", dbname)
    return with_database(dsn, dbname)


async def drop_database(dsn: str, dbname: str) -> None:
    await _on_server(dsn, "DROP DATABASE IF EXISTS {name} WITH (FORCE)", dbname)
