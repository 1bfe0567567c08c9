"""`ongea-pesa user show` and `user list` as an operator runs them, and the broken configurations a newcomer
meets: each ends in one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest

from tests.ledger.conftest import fresh_phone


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "STRIPE_"))}
    clean.pop("DATABASE_URL", None)
    return {**clean, "ONGEA_DATA_DIR": str(tmp_path / "data")}


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_user_show_and_list(database_url: str, env: dict[str, str]) -> None:
    phone = fresh_phone()
    made = cli(
        env,
        "user",
        "add",
        "--phone",
        phone,
        "--balance",
        "5000",
        "--plan",
        "basic",
        "--json",
        "--database-url",
        database_url,
    )
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    shown = cli(env, "user", "show", "0" + phone[3:], "--database-url", database_url)
    assert shown.returncode == 0, shown.stderr
    assert f"user:        {user['user_id']}" in shown.stdout
    assert "balance:     KES 5000.00 (available 5000.00, held 0.00)" in shown.stdout
    assert "plan:        basic (active, fee 1%)" in shown.stdout
    assert "usage:       0 of 50 payments" in shown.stdout
    assert "no transactions yet" in shown.stdout
    # One line naming the database: the same user, host and database, and no password (the embedded
    # server's URL has an empty one; its socket folder may come back percent-encoded).
    [line] = shown.stderr.strip().splitlines()
    prefix = "ongea-pesa: using database "
    assert line.startswith(prefix), line
    said, meant = urlsplit(line[len(prefix) :]), urlsplit(database_url)
    assert (said.username, said.hostname, said.port, said.path) == (
        meant.username,
        meant.hostname,
        meant.port,
        meant.path,
    )
    assert unquote(said.query) == unquote(meant.query) and said.password is None
    as_json = json.loads(
        cli(env, "user", "show", user["user_id"], "--json", "--database-url", database_url).stdout
    )
    assert as_json["profile"]["phone"] == phone and as_json["transactions"] == []
    listed = cli(env, "user", "list", "--json", "--database-url", database_url)
    assert listed.returncode == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {
        "user_id": user["user_id"],
        "phone": phone,
        "plan": "basic",
        "balance": "5000.00",
    }.items() <= next(r for r in rows if r["user_id"] == user["user_id"]).items()
    missing = cli(env, "user", "show", str(uuid.uuid4()), "--database-url", database_url)
    assert missing.returncode == 2 and "no user" in missing.stderr
    nonsense = cli(env, "user", "show", "mama", "--database-url", database_url)
    assert nonsense.returncode == 2 and "neither a user id nor a Kenyan mobile number" in nonsense.stderr


def test_the_banner_hides_the_password(env: dict[str, str]) -> None:
    r = cli(env, "migrate", "--database-url", "postgresql://ongea:s3cret@127.0.0.1:1/db")
    assert r.returncode == 1
    assert "s3cret" not in r.stderr and "postgresql://ongea@127.0.0.1:1/db" in r.stderr


def _with(dsn: str, *, user: str | None = None, db: str | None = None) -> str:
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if user is not None:
        netloc = f"{user}@{netloc.rsplit('@', 1)[-1]}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{db}" if db else parts.path))


BROKEN_DATABASES = {
    "invalid-url": (lambda dsn: "not-a-url", "is not a usable PostgreSQL URL"),
    "other-scheme": (lambda dsn: "mysql://root@127.0.0.1/app", "is not a usable PostgreSQL URL"),
    "unreachable-port": (lambda dsn: "postgresql://postgres@127.0.0.1:1/app", "cannot reach the database"),
    "unknown-host": (lambda dsn: "postgresql://postgres@no-such-host.invalid/app", "unknown host"),
    "wrong-role": (lambda dsn: _with(dsn, user="no_such_role_x"), 'role "no_such_role_x" does not exist'),
    "wrong-database": (
        lambda dsn: _with(dsn, db="no_such_database_x"),
        'database "no_such_database_x" does not',
    ),
}
COMMANDS = {
    "serve": ["serve", "--port", "0"],
    "migrate": ["migrate"],
    "user add": ["user", "add", "--phone", "0712345678"],
    "user show": ["user", "show", "0712345678"],
    "user list": ["user", "list"],
    "token": ["token", str(uuid.UUID(int=1))],
}


def assert_one_clear_line(r: subprocess.CompletedProcess[str], expected: str) -> None:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert lines and expected in lines[-1], r.stderr
    assert lines[-1].startswith("ongea-pesa ")


@pytest.mark.parametrize("broken", list(BROKEN_DATABASES))
def test_serve_with_a_broken_database(server_dsn: str, env: dict[str, str], broken: str) -> None:
    make_url, expected = BROKEN_DATABASES[broken]
    r = cli({**env, "DATABASE_URL": make_url(server_dsn)}, *COMMANDS["serve"])
    assert_one_clear_line(r, expected)


@pytest.mark.parametrize(
    ("command", "broken"),
    [
        ("migrate", "invalid-url"),
        ("migrate", "wrong-role"),
        ("user add", "unreachable-port"),
        ("user show", "wrong-role"),
        ("user list", "wrong-database"),
        ("token", "unknown-host"),
    ],
)
def test_every_command_with_a_broken_database(
    server_dsn: str, env: dict[str, str], command: str, broken: str
) -> None:
    """serve meets every broken database above; each other command one of them (they share the path)."""
    make_url, expected = BROKEN_DATABASES[broken]
    r = cli(env, *COMMANDS[command], "--database-url", make_url(server_dsn))
    assert_one_clear_line(r, expected)


def test_port_in_use(database_url: str, env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli(env, "serve", "--port", str(port), "--database-url", database_url)
    assert_one_clear_line(r, f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("args", "extra_env", "expected"),
    [
        # The flag is named when the flag is wrong, the variable when the variable is (issue 24).
        (["serve", "--port", "70000"], {}, "argument --port: 70000 is not a port"),
        (["serve"], {"ONGEA_PORT": "70000"}, "bad setting ONGEA_PORT"),
        (["serve", "--port", "http"], {}, "argument --port: not a port number"),
        (["serve"], {"ONGEA_LOG_LEVEL": "LOUD"}, "bad setting ONGEA_LOG_LEVEL"),
        (["user", "list"], {"DARAJA_ENVIRONMENT": "moon"}, "bad setting DARAJA_ENVIRONMENT"),
        (["token", "x"], {"ONGEA_PIN_MAX_ATTEMPTS": "many"}, "bad setting ONGEA_PIN_MAX_ATTEMPTS"),
        (["serve"], {"ONGEA_DB_POOL_MIN": "30"}, "bad settings: ONGEA_DB_POOL_MIN (30) exceeds"),
    ],
)
def test_bad_settings(env: dict[str, str], args: list[str], extra_env: dict[str, str], expected: str) -> None:
    r = cli({**env, **extra_env}, *args)
    assert_one_clear_line(r, expected)
