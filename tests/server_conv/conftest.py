"""A real `ongea-pesa serve` process on a free port and the run's real PostgreSQL, with known secrets so a
test can mint user tokens (as Supabase would) and sign webhooks (as ElevenLabs would)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import jwt
import pytest

from ledger.users import create_user
from tests.serving import ServeProcess, SharedServes, shared_serve
from voice_server.auth import mint_user_token
from voice_server.session_tokens import mint_session_token

JWT_SECRET = "test-user-jwt-secret-0123456789abcdef0123456789"
SESSION_SECRET = "test-session-secret-0123456789abcdef0123456789"
WEBHOOK_SECRET = "wsec_test_0123456789abcdef0123456789abcdef"
METRICS_TOKEN = "test-metrics-token-0123456789"
METRICS_HEADERS = {"Authorization": f"Bearer {METRICS_TOKEN}"}

_phones = itertools.count(random.Random().randrange(0, 10_000_000) * 10)


class Server(ServeProcess):
    """`ongea-pesa serve` with this harness's secrets (`server_env`); its whole output is `output()`."""

    @property
    def url(self) -> str:
        return self.base

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://", 1)


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    return {
        **clean,
        "ONGEA_DATA_DIR": str(tmp / "data"),
        "ONGEA_LOG_LEVEL": "INFO",
        "ONGEA_JWT_SECRET": JWT_SECRET,
        "ONGEA_SESSION_SECRET": SESSION_SECRET,
        "ELEVENLABS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ONGEA_METRICS_TOKEN": METRICS_TOKEN,
        "ONGEA_PAYOUT_RECONCILE_AFTER_SECONDS": "2",
        "ONGEA_DB_POOL_MIN": "1",
        "ONGEA_DB_POOL_MAX": "6",  # the shared PostgreSQL serves 8 engineers
        **extra,
    }


@contextlib.contextmanager
def quick_start_server(**extra: str) -> Iterator[tuple[ServeProcess, Path]]:
    """`ongea-pesa serve` exactly as the Quick start runs it: no DATABASE_URL, no Daraja credentials, so the
    embedded PostgreSQL (pgserver) under its data dir and the M-Pesa simulator (and the demo-user route). A
    short folder of its own: a long one would not fit the database's socket path, and pytest prunes old
    tmp_path folders."""
    data = Path(tempfile.mkdtemp(prefix="ongea-talk-"))
    env = server_env(data, **extra)
    env.pop("DATABASE_URL", None)
    env.pop("ONGEA_DATABASE_URL", None)
    served = ServeProcess([], env, limit=180)
    try:
        yield served, data
    finally:
        code = served.stop()
        shutil.rmtree(data, ignore_errors=True)
        assert code == 0, served.log()


def start_server(database_url: str, tmp: Path, **extra: str) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    return Server(["--database-url", database_url], server_env(tmp, **extra), limit=180)  # a hang guard


@pytest.fixture
@shared_serve("server_conv")
def server(
    shared_serves: SharedServes, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Server:
    """The server of this harness's settings, shared by every test that asks for it (`SharedServes`): its
    `output()` is what it printed since the test began; it is stopped, and must exit cleanly, once a test
    that does not use it comes, or at the end."""
    return shared_serves.get(
        "server_conv", lambda: start_server(database_url, tmp_path_factory.mktemp("srv"))
    )


@dataclass
class User:
    user_id: uuid.UUID
    token: str
    phone: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeUser = Callable[..., Awaitable[User]]

CONTACTS = (("Mary Wambui", "254733444555", "Mama"), ("John Kamau", "254722111222", "JK"))


@pytest.fixture
def make_user(pool: asyncpg.Pool) -> MakeUser:
    async def make(
        balance: str = "10000.00",
        plan: str = "basic",
        pin: str | None = "4321",
        contacts: tuple[tuple[str, str, str], ...] = CONTACTS,
    ) -> User:
        phone = f"2547{next(_phones) % 100_000_000:08d}"
        user = await create_user(pool, phone, balance=Decimal(balance), plan=plan, pin=pin)
        await pool.executemany(
            "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, $2, $3, $4)",
            [(user.user_id, n, p, k) for n, p, k in contacts],
        )
        return User(user.user_id, mint_user_token(JWT_SECRET, user.user_id, ttl_seconds=3600), phone)

    return make


def forged_session_tokens(user_id: uuid.UUID, session_id: str) -> dict[str, str]:
    """Session tokens that must be refused for this user's session, by what is wrong with them: forged
    (other key, alg none, the user secret, a user token), expired, malformed; shared by the WebSocket and the
    tools tests so both refuse the same set."""
    later = datetime.now(UTC) + timedelta(minutes=10)
    claims = {
        "sid": session_id,
        "sub": str(user_id),
        "aud": "ongea-pesa-session",
        "exp": int(later.timestamp()),
    }
    header = {"alg": "none", "typ": "JWT"}
    unsigned = (
        jwt.utils.base64url_encode(json.dumps(header).encode()).decode()
        + "."
        + jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
        + "."
    )
    return {
        "empty": "",
        "garbage": "not-a-token",
        "other key": jwt.encode(claims, "someone-elses-key-0123456789abcdef", algorithm="HS256"),
        "alg none": unsigned,
        "user token as session token": jwt.encode(
            {"sub": str(user_id), "aud": "authenticated", "exp": claims["exp"]}, JWT_SECRET, algorithm="HS256"
        ),
        "signed with the user secret": jwt.encode(claims, JWT_SECRET, algorithm="HS256"),
        "expired": mint_session_token(
            SESSION_SECRET, session_id, user_id, datetime.now(UTC) - timedelta(seconds=5)
        ),
        "no session id": jwt.encode(
            {k: v for k, v in claims.items() if k != "sid"}, SESSION_SECRET, algorithm="HS256"
        ),
    }
