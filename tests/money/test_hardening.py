"""The smaller holes of issue 7 (finding 5), tried against the real `ongea-pesa serve` process: secrets never
logged, atomic secret files, minimum secret lengths, bounded user tokens with role authenticated, header and
body read timeouts, /healthz without the exception, JSON for every error (aiohttp's own 400 too)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jwt
import pytest

from ledger.db import create_pool
from tests.serving import ServeProcess, poll_until
from voice_server.app import AppRunner, create_app, redact_path
from voice_server.auth import TokenError, mint_user_token, verify_user_token
from voice_server.settings import Settings

JWT_SECRET = "hardening-jwt-secret-" + uuid.uuid4().hex
CALLBACK_SECRET = "hardening-callback-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data = tmp_path_factory.mktemp("served")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    env.update(
        ONGEA_DATA_DIR=str(data / "data"),
        ONGEA_JWT_SECRET=JWT_SECRET,
        ONGEA_MPESA_CALLBACK_SECRET=CALLBACK_SECRET,
        ONGEA_HTTP_READ_TIMEOUT_SECONDS="1",
        ONGEA_LOG_LEVEL="DEBUG",
        ONGEA_DB_POOL_MIN="1",
        ONGEA_DB_POOL_MAX="5",
    )
    server = ServeProcess(["--database-url", database_url], env, limit=180)  # a hang guard
    yield server
    server.stop()


def _host_port(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


async def test_the_callback_secret_is_never_logged(served: ServeProcess) -> None:
    # Every bad callback that reaches a handler is logged (the STK and payout ones as malformed, the C2B
    # confirmations as unreadable): the secret is looked for once those lines are in the log.
    kinds = ("malformed STK callback", "malformed payout_result callback", "C2B confirmation unreadable")

    def logged() -> list[int]:
        text = served.output()
        return [text.count(kind) for kind in kinds]

    before = logged()
    base = served.base
    async with aiohttp.ClientSession() as http:
        for path in ("stk", "stk/not-a-uuid", "payout/result", "c2b/confirmation", "c2b/validation", "nope"):
            for data in (b"{}", b"{broken", b'{"Body": {"stkCallback": {"CheckoutRequestID": 5}}}'):
                async with http.post(f"{base}/v1/callbacks/{CALLBACK_SECRET}/{path}", data=data) as resp:
                    assert resp.status < 500, (path, data, await resp.text())
    want = [6, 3, 3]
    await poll_until(
        f"the server to log {dict(zip(kinds, want, strict=True))}",
        lambda: [n - b for n, b in zip(logged(), before, strict=True)] == want,
    )
    assert CALLBACK_SECRET not in served.output()
    assert redact_path(f"/v1/callbacks/{CALLBACK_SECRET}/stk/1") == "/v1/callbacks/***/stk/1"
    assert redact_path(f"/v1/mpesa/{CALLBACK_SECRET}/stk") == "/v1/mpesa/***/stk"


async def test_an_oversized_header_gets_a_json_400(served: ServeProcess) -> None:
    host, port = _host_port(served.base)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400", raw[:200]
    assert b"application/json" in head.lower()
    assert json.loads(body)["error"]["code"] == "bad_request"


async def test_half_open_connections_are_closed(served: ServeProcess) -> None:
    """300 connections that send part of a request and stall (slowloris) are all closed by the server."""
    host, port = _host_port(served.base)
    conns = []
    for i in range(300):
        reader, writer = await asyncio.open_connection(host, port)
        if i % 2:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        conns.append((reader, writer))

    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            await asyncio.wait_for(reader.read(), timeout=15)
        except (ConnectionResetError, TimeoutError):
            return False
        return True

    results = await asyncio.gather(*(closed(r) for r, _ in conns))
    for _, w in conns:
        w.close()
    assert all(results), f"{results.count(False)} connections were still open"


async def test_a_body_that_never_arrives_is_a_json_408(served: ServeProcess) -> None:
    host, port = _host_port(served.base)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /v1/topups HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"amo'
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), raw[:200]
    assert json.loads(body)["error"]["code"] == "request_timeout"


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated", "iat": now,
            "exp": now + 600, **extra}  # fmt: skip


@pytest.mark.parametrize(
    "claims",
    [
        _claims(role="service_role"),
        _claims(role="anon"),
        {k: v for k, v in _claims().items() if k != "role"},
        _claims(exp=int(time.time()) + 100 * 365 * 24 * 3600),
        {k: v for k, v in _claims().items() if k != "iat"},
        _claims(iat="yesterday"),
    ],
    ids=["service_role", "anon", "no-role", "100-years", "no-iat", "iat-not-a-number"],
)
async def test_user_tokens_need_role_authenticated_and_a_bounded_life(
    served: ServeProcess, claims: dict[str, Any]
) -> None:
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    with pytest.raises(TokenError):
        verify_user_token(JWT_SECRET, token)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{served.base}/v1/topups", json={"amount": 10}, headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"
    good = mint_user_token(JWT_SECRET, uuid.uuid4(), ttl_seconds=600)
    assert verify_user_token(JWT_SECRET, good)


def _serve_with(
    database_url: str, data_dir: Path, settings: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`ongea-pesa serve` with only these settings of ours (and a data dir), run until it exits."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    env.update({"ONGEA_DATA_DIR": str(data_dir), **settings})
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "serve", "--port", "0", "--database-url", database_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,  # a hang guard: under load the refusal can take a minute to come
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ONGEA_JWT_SECRET", "x"),
        ("ONGEA_SESSION_SECRET", "short-session-secret"),
        ("ONGEA_MPESA_CALLBACK_SECRET", "abc"),
        ("ELEVENLABS_WEBHOOK_SECRET", "tiny"),
    ],
)
def test_serve_refuses_short_secrets_with_one_clear_line(
    variable: str, value: str, database_url: str, tmp_path: Path
) -> None:
    done = _serve_with(database_url, tmp_path, {variable: value})
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if variable in line]
    assert len(lines) == 1 and "too short" in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert value not in lines[0] or len(value) < 3


def test_serve_refuses_a_payout_rate_too_slow_for_the_lease(database_url: str, tmp_path: Path) -> None:
    """One payout every 100 s with a 60 s lease: a claimed payout would wait past its lease for its turn."""
    done = _serve_with(database_url, tmp_path, {"ONGEA_PAYOUT_RATE_PER_SECOND": "0.01"})
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "ONGEA_PAYOUT_RATE_PER_SECOND" in line]
    assert len(lines) == 1 and "too slow" in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        # A production server never arms the crash tests' fault injection.
        (
            {
                "ONGEA_FAULT": "after_send_before_record",
                "DARAJA_ENVIRONMENT": "production",
                "DARAJA_C2B_SHORTCODE": "174379",
            },
            "ONGEA_FAULT is for the crash tests",
        ),
        # A point that does not exist would never fire: refused, not ignored.
        ({"ONGEA_FAULT": "after_sned_before_record"}, "bad setting ONGEA_FAULT"),
    ],
)
def test_serve_refuses_a_fault_injection_outside_the_crash_tests(
    database_url: str, tmp_path: Path, settings: dict[str, str], says: str
) -> None:
    done = _serve_with(database_url, tmp_path, settings)
    assert done.returncode != 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "ONGEA_FAULT" in line]
    assert len(lines) == 1 and says in lines[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "listening on" not in done.stdout


# Each process loads the code, says it is ready, waits for the starting gun, then asks for the secret: they
# create it at the same moment.
_RACER = """
import sys, time
from pathlib import Path
from voice_server.local_secrets import local_secret
data_dir, gun, ready = map(Path, sys.argv[1:4])
ready.touch()
while not gun.exists():
    time.sleep(0.001)
print(local_secret(data_dir, "jwt_secret"))
"""


def test_local_secrets_created_by_many_processes_at_once_are_never_read_empty(tmp_path: Path) -> None:
    for round_ in range(3):
        data_dir = tmp_path / f"round{round_}"
        gun = tmp_path / f"gun{round_}"
        ready = [tmp_path / f"ready{round_}-{i}" for i in range(16)]
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", _RACER, str(data_dir), str(gun), str(path)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for path in ready
        ]
        deadline = time.monotonic() + 120  # a hang guard: 16 Pythons start slowly on a loaded machine
        while not all(path.exists() for path in ready):  # all started and waiting
            assert all(r.poll() is None for r in racers), "a racer died before the gun"
            assert time.monotonic() < deadline, "the racers did not all start"
            time.sleep(0.01)
        gun.touch()
        values = [r.communicate(timeout=180)[0].strip() for r in racers]
        assert len(set(values)) == 1 and len(values[0]) >= 32, values
        stored = (data_dir / "secrets" / "jwt_secret").read_text()
        assert stored == values[0]
        assert [p.name for p in (data_dir / "secrets").iterdir()] == ["jwt_secret"]  # no temporary left
        assert oct((data_dir / "secrets" / "jwt_secret").stat().st_mode & 0o777) == "0o600"


async def test_healthz_says_unavailable_without_the_exception(server_dsn: str, tmp_path: Path) -> None:
    from ledger.db import create_database, drop_database

    name = f"ongea_gone_{uuid.uuid4().hex[:10]}"
    url = await create_database(server_dsn, name)
    pool = await create_pool(url, min_size=1, max_size=2)
    await pool.close()
    await drop_database(server_dsn, name)
    pool = await asyncpg.create_pool(url, min_size=0, max_size=2)
    settings = Settings(data_dir=tmp_path, ONGEA_JWT_SECRET=JWT_SECRET)  # type: ignore[call-arg]
    app = create_app(settings, pool)
    runner = AppRunner(app, settings)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    from aiohttp import web

    site = web.SockSite(runner, sock)
    await site.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{sock.getsockname()[1]}/healthz") as resp,
        ):
            body = await resp.json()
            assert resp.status == 503
            assert body == {"status": "unavailable", "database": "unavailable"}
            assert name not in json.dumps(body)
    finally:
        await runner.cleanup()
        await pool.close()


async def test_every_error_is_json(served: ServeProcess) -> None:
    base = served.base
    async with aiohttp.ClientSession() as http:
        cases = [
            ("GET", "/no/such/route", None, 404),
            ("DELETE", "/healthz", None, 405),
            ("POST", "/v1/topups", b"x" * (70 * 1024), 413),
            ("POST", "/v1/topups", b'{"amount": 5}', 401),
            ("POST", f"/v1/callbacks/{CALLBACK_SECRET}/c2b/nope", b"{}", 404),
        ]
        for method, path, data, status in cases:
            async with http.request(method, f"{base}{path}", data=data) as resp:
                assert resp.status == status, (method, path, resp.status)
                assert resp.content_type == "application/json", (method, path)
                body = await resp.json()
                assert set(body["error"]) == {"code", "message"}


def test_log_lines_never_carry_the_secret_whoever_writes_them() -> None:
    import io
    import logging

    from voice_server.app import RedactSecrets

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    handler.addFilter(RedactSecrets(CALLBACK_SECRET))
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST http://h/v1/callbacks/%s/stk/1 failed", "abc-guessable")
        logger.warning("raw secret %s in a message", CALLBACK_SECRET)
        try:
            raise ValueError(f"cannot reach http://h/v1/mpesa/{CALLBACK_SECRET}/payout/result")
        except ValueError:
            logger.exception("callback failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert CALLBACK_SECRET not in text and "abc-guessable" not in text
    assert "/v1/callbacks/***/stk/1" in text and "/v1/mpesa/***/payout/result" in text
