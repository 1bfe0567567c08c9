"""Where Daraja access tokens live: per process (tests, tools) or in the database, shared by every process.

Each new Daraja token invalidates the previous one for the same app. Two servers and the CLI that each fetch
their own token would keep refusing each other's requests, so in the server the token is one row of
`daraja_tokens`: refreshed by one process at a time (the row is locked `FOR UPDATE` while it fetches), read
by all. A process whose request was refused for its token marks that token stale (only if it is still the
stored one), and the next reader refreshes it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

# (token, seconds until it should be refreshed, seconds until it expires)
Fetch = Callable[[], Awaitable[tuple[str, float, float]]]


class TokenStore(Protocol):
    fetches: int

    async def get(self, fetch: Fetch) -> str: ...

    async def invalidate(self, value: str) -> None: ...


@dataclass
class _Token:
    value: str
    refresh_at: float


@dataclass
class TokenCache:
    """One token per process, fetched by one caller at a time (single flight). For one process only."""

    _token: _Token | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetches: int = 0

    async def get(self, fetch: Fetch) -> str:
        token = self._token
        if token is not None and time.monotonic() < token.refresh_at:
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and time.monotonic() < token.refresh_at:
                return token.value
            value, refresh_in, _expires_in = await fetch()
            self.fetches += 1
            self._token = _Token(value, time.monotonic() + refresh_in)
            return value

    async def invalidate(self, value: str) -> None:
        """Drop `value` if it is still the cached token (a newer one fetched meanwhile is kept)."""
        if self._token is not None and self._token.value == value:
            self._token = None


def app_key(base_url: str, consumer_key: str) -> str:
    """The row of a Daraja app: a digest, so the consumer key itself is not stored."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\n{consumer_key}".encode()).hexdigest()


# clock_timestamp(), not now(): a transaction that waited for the row lock must not judge by its start time.
_CURRENT = """SELECT access_token FROM daraja_tokens
              WHERE app = $1 AND access_token IS NOT NULL
                AND refresh_at > clock_timestamp() AND expires_at > clock_timestamp()"""


@dataclass
class DatabaseTokenStore:
    """The token of one Daraja app in `daraja_tokens`, shared by every process on the database."""

    pool: asyncpg.Pool
    app: str
    fetches: int = 0  # fetched by this process
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def get(self, fetch: Fetch) -> str:
        current: str | None = await self.pool.fetchval(_CURRENT, self.app)
        if current is not None:
            return current
        async with self._lock:  # one refresher per process; the row lock makes it one per database
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO daraja_tokens (app) VALUES ($1) ON CONFLICT (app) DO NOTHING", self.app
                )
                row = await conn.fetchrow(
                    "SELECT access_token, refresh_at > clock_timestamp() AND expires_at > clock_timestamp() "
                    "AS fresh "
                    "FROM daraja_tokens WHERE app = $1 FOR UPDATE",
                    self.app,
                )
                if row is not None and row["fresh"]:
                    token: str = row["access_token"]
                    return token  # another process refreshed it while we waited for the lock
                value, refresh_in, expires_in = await fetch()
                self.fetches += 1
                await conn.execute(
                    """UPDATE daraja_tokens
                       SET access_token = $2, fetched_at = clock_timestamp(), fetches = fetches + 1,
                           refresh_at = clock_timestamp() + make_interval(secs => $3),
                           expires_at = clock_timestamp() + make_interval(secs => $4)
                       WHERE app = $1""",
                    self.app,
                    value,
                    refresh_in,
                    expires_in,
                )
                return value

    async def invalidate(self, value: str) -> None:
        """Daraja refused `value`: mark it stale, unless another process has already replaced it."""
        await self.pool.execute(
            "UPDATE daraja_tokens SET refresh_at = '-infinity' WHERE app = $1 AND access_token = $2",
            self.app,
            value,
        )
