"""Every problem at once (issue 25): `serve` in production with nothing set names every missing setting in
one run, in the README's Deploy order; fixed one at a time, the list shrinks by that one until it starts.
`ongea-pesa check` says the same without starting anything, and tries each connection: a real PostgreSQL
and `ongea-pesa mpesa-sim`, then closed ports, one line per problem."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from ledger.exposure import exposure
from tests.attack.test_grant_all_after_migrating import GRANT_ALL
from tests.daraja.test_production import production_certificate
from tests.mpesa.conftest import free_port
from tests.serving import ServeProcess, wait_healthy
from tests.test_supabase_compat import _supabase_database, signed_in

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "ongea-pesa: refusing to start: "

# What production with nothing set lacks, in the README's Deploy order (database, secrets, Daraja).
MISSING = [
    "DATABASE_URL",
    "ONGEA_JWT_SECRET",
    "ONGEA_SESSION_SECRET",
    "DARAJA_CONSUMER_KEY",
    "ONGEA_PUBLIC_URL",
    "DARAJA_SHORTCODE",
    "DARAJA_PASSKEY",
    "DARAJA_B2C_SHORTCODE",
    "DARAJA_B2B_SHORTCODE",
    "DARAJA_C2B_SHORTCODE",
    "DARAJA_INITIATOR_NAME",
    "DARAJA_INITIATOR_PASSWORD",
    "DARAJA_CERTIFICATE_PATH",
    "DARAJA_PULL_NOMINATED_NUMBER",
]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_")) and k != "DATABASE_URL"
    }
    env.update({"ONGEA_DATA_DIR": str(tmp_path / "data"), "ONGEA_LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_cwd(env),
    )  # fmt: skip


def tmp_cwd(env: dict[str, str]) -> str:
    """A folder with no `.env` of a developer's in it."""
    path = Path(env["ONGEA_DATA_DIR"]).parent
    return str(path)


def named(line: str) -> str:
    """The setting a problem line is about: the first of MISSING it names."""
    hits = [(line.find(name), name) for name in MISSING if name in line]
    return min(hits)[1] if hits else line


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "sim.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_server.cli", "mpesa-sim", "--port", str(port),
         "--consumer-key", "prod-key", "--consumer-secret", "prod-secret"],
        env=clean_env(tmp_path), stdout=log, stderr=log, cwd=ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        assert asyncio.run(wait_healthy(f"{url}/simulator/payouts", tries=600, pause=0.1)), (
            tmp_path / "sim.log"
        ).read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def production_fixes(tmp_path: Path, database_url: str, simulator: str) -> list[tuple[str, dict[str, str]]]:
    """Each setting a person fixes, in the order `serve` listed them."""
    return [
        ("DATABASE_URL", {"DATABASE_URL": database_url}),
        ("ONGEA_JWT_SECRET", {"ONGEA_JWT_SECRET": "supabase-jwt-secret-" + "j" * 24}),
        ("ONGEA_SESSION_SECRET", {"ONGEA_SESSION_SECRET": "session-secret-" + "s" * 24}),
        ("DARAJA_CONSUMER_KEY", {
            "DARAJA_CONSUMER_KEY": "prod-key", "DARAJA_CONSUMER_SECRET": "prod-secret",
            "DARAJA_BASE_URL": simulator,
        }),
        ("ONGEA_PUBLIC_URL", {"ONGEA_PUBLIC_URL": "https://pay.ongea.example"}),
        ("DARAJA_SHORTCODE", {"DARAJA_SHORTCODE": "4123456"}),
        ("DARAJA_PASSKEY", {"DARAJA_PASSKEY": "a-production-passkey"}),
        ("DARAJA_B2C_SHORTCODE", {"DARAJA_B2C_SHORTCODE": "3001234"}),
        ("DARAJA_B2B_SHORTCODE", {"DARAJA_B2B_SHORTCODE": "3005678"}),
        ("DARAJA_C2B_SHORTCODE", {"DARAJA_C2B_SHORTCODE": "4123457"}),
        ("DARAJA_INITIATOR_NAME", {"DARAJA_INITIATOR_NAME": "ongea_api"}),
        ("DARAJA_INITIATOR_PASSWORD", {"DARAJA_INITIATOR_PASSWORD": "a-strong-initiator-password"}),
        ("DARAJA_CERTIFICATE_PATH", {
            "DARAJA_CERTIFICATE_PATH": str(production_certificate(tmp_path / "production.cer")),
        }),
        ("DARAJA_PULL_NOMINATED_NUMBER", {"DARAJA_PULL_NOMINATED_NUMBER": "0711223344"}),
    ]  # fmt: skip


def test_serve_names_every_missing_setting_at_once_then_starts_once_all_are_fixed(
    tmp_path: Path, database_url: str, simulator: str
) -> None:
    """Before: one complaint per start, the first about Daraja (step 5) rather than the database (step 1)."""
    env = clean_env(tmp_path, DARAJA_ENVIRONMENT="production")
    remaining = list(MISSING)
    for fixed, values in production_fixes(tmp_path, database_url, simulator):
        done = cli(env, "serve", "--port", "0")
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, done.stderr
        assert all(line.startswith(PREFIX) for line in lines), done.stderr
        assert [named(line) for line in lines] == remaining  # each once, in the README's order
        env.update(values)
        remaining.remove(fixed)
    server = ServeProcess([], dict(env, ONGEA_LOG_LEVEL="INFO"))
    try:
        assert server.base.startswith("http://127.0.0.1:")
        assert PREFIX not in server.output()
    finally:
        server.stop()


def test_check_names_the_same_problems_without_starting_anything(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    done = cli(env, "check", "--production")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("ongea-pesa check: ") for line in lines), done.stderr
    assert [named(line) for line in lines] == MISSING
    assert not (tmp_path / "data" / "pg").exists()  # no embedded database was started
    assert "skipped: database: DATABASE_URL is not set (not checked; production refuses" in done.stdout
    assert "embedded" not in done.stdout  # production never starts the embedded database


def test_check_in_production_names_the_crash_tests_fault_injection(tmp_path: Path) -> None:
    """`ONGEA_FAULT` is for the crash tests alone: a production check says so, beside what is missing."""
    done = cli(clean_env(tmp_path, ONGEA_FAULT="topup_before_push"), "check", "--production")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert [line for line in lines if "ONGEA_FAULT" in line] == [
        "ongea-pesa check: ONGEA_FAULT is for the crash tests: a production server never kills itself "
        "on purpose"
    ]
    assert [named(line) for line in lines if "ONGEA_FAULT" not in line] == MISSING


def test_check_against_postgresql_and_the_simulator_finds_nothing_to_fix(
    tmp_path: Path, database_url: str, simulator: str
) -> None:
    env = clean_env(
        tmp_path, DATABASE_URL=database_url, DARAJA_BASE_URL=simulator,
        DARAJA_CONSUMER_KEY="prod-key", DARAJA_CONSUMER_SECRET="prod-secret",
    )  # fmt: skip
    done = cli(env, "check")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout.splitlines()
    assert any(line.startswith("ok: database ") and "(migrations current)" in line for line in out), out
    assert f"ok: Daraja {simulator} (access token for DARAJA_CONSUMER_KEY)" in out
    assert "ongea-pesa check: nothing to fix" in out

    # Keys the simulator does not know (another app: not the token the first run stored for the servers).
    done = cli(dict(env, DARAJA_CONSUMER_KEY="not-our-key"), "check")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"ongea-pesa check: Daraja {simulator}: no access token"), line


async def test_check_says_when_migrations_are_pending(
    tmp_path: Path, empty_database: Callable[[], Awaitable[str]]
) -> None:
    url = await empty_database()
    done = cli(clean_env(tmp_path, DATABASE_URL=url), "check")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "migration(s) not applied (0001_auth.sql, " in line and "run ongea-pesa migrate" in line


def test_check_against_closed_ports_is_one_line_per_problem(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = clean_env(
        tmp_path,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/ongea",
        DARAJA_BASE_URL=f"http://127.0.0.1:{closed}", DARAJA_CONSUMER_KEY="k", DARAJA_CONSUMER_SECRET="s",
        ELEVENLABS_API_KEY="xi-key", ELEVENLABS_BASE_URL=f"http://127.0.0.1:{closed}",
    )  # fmt: skip
    done = cli(env, "check")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 3, lines
    database, daraja, elevenlabs = lines
    assert database.startswith(f"ongea-pesa check: database postgresql://postgres@127.0.0.1:{closed}/ongea")
    assert "cannot reach the database" in database
    assert daraja.startswith(f"ongea-pesa check: Daraja http://127.0.0.1:{closed}: no access token")
    assert elevenlabs.startswith("ongea-pesa check: ElevenLabs: cannot reach the API")


async def test_user_add_gives_no_opening_balance_in_production(
    tmp_path: Path, database_url: str, pool: asyncpg.Pool
) -> None:
    """Found walking through Deploy: `user add --balance` would put money no one paid into a live ledger."""
    env = clean_env(tmp_path, DARAJA_ENVIRONMENT="production", DATABASE_URL=database_url)
    phone = f"2547{uuid.uuid4().int % 10**8:08d}"
    done = cli(env, "user", "add", "--phone", phone, "--balance", "100")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "user add: --balance is for development; with DARAJA_ENVIRONMENT=production a wallet starts at 0 "
        "and is topped up through M-Pesa"
    ]
    assert await pool.fetchval("SELECT count(*) FROM profiles WHERE phone_number = $1", phone) == 0
    done = cli(env, "user", "add", "--phone", phone, "--json")
    assert done.returncode == 0, done.stderr
    assert await pool.fetchval("SELECT wallet_balance FROM profiles WHERE phone_number = $1", phone) == 0


async def test_an_unmigrated_database_is_not_read_for_the_daraja_token(
    tmp_path: Path, empty_database: Callable[[], Awaitable[str]], simulator: str
) -> None:
    """The token the servers share lives in a table the migrations make: before them, check asks Daraja."""
    url = await empty_database()
    env = clean_env(
        tmp_path, DATABASE_URL=url, DARAJA_BASE_URL=simulator,
        DARAJA_CONSUMER_KEY="prod-key", DARAJA_CONSUMER_SECRET="prod-secret",
    )  # fmt: skip
    done = cli(env, "check")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "migration(s) not applied" in line
    assert f"ok: Daraja {simulator} (access token for DARAJA_CONSUMER_KEY)" in done.stdout.splitlines()


async def _granted_database(empty_database: Callable[[], Awaitable[str]]) -> tuple[str, uuid.UUID]:
    """A Supabase-like database, migrated, then a blanket `GRANT ALL ... TO authenticated, anon` (a common fix
    for "permission denied"), with a user whose PIN is set and a table whose name is a statement."""
    url, conn = await _supabase_database(empty_database)
    try:
        user: uuid.UUID = await conn.fetchval(
            "INSERT INTO auth.users (id, phone) VALUES (gen_random_uuid(), '254700000003') RETURNING id"
        )
        await conn.execute("UPDATE profiles SET pin_hash = 'argon2-hash-of-a-pin' WHERE id = $1", user)
        await conn.execute('CREATE TABLE public."x; DROP TABLE profiles; --" (id INT)')
        await conn.execute(GRANT_ALL)
    finally:
        await conn.close()
    return url, user


async def test_check_names_a_blanket_grant_and_its_statements_take_it_back(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """The grant gives a signed-in user their PIN hash, which four digits make a guess of seconds offline.
    `ongea-pesa check` says so, with the statements that take exactly that back (the table named like a
    statement is named, never run); the user's own reads and preferences work as before."""
    url, user = await _granted_database(empty_database)
    conn = await asyncpg.connect(url)
    try:
        found = [str(g) for g in await exposure(conn)]
        assert "authenticated SELECT on table public.profiles" in found
        assert any(g.startswith("authenticated EXECUTE on public.ledger_confirm(") for g in found), found
        async with signed_in(conn, "authenticated", user):
            assert await conn.fetchval("SELECT pin_hash FROM profiles") == "argon2-hash-of-a-pin"

        env = clean_env(tmp_path, DATABASE_URL=url)
        done = await asyncio.to_thread(cli, env, "check")
        assert done.returncode == 1, done.stdout + done.stderr
        problem, *statements = done.stderr.strip().splitlines()
        assert f"hold {len(found)} grant(s) the migrations took away" in problem, problem
        assert all(s.startswith(("REVOKE ", "GRANT ")) and s.endswith(";") for s in statements), statements
        assert "ongea-pesa check: 1 problem(s)" in done.stdout

        await conn.execute("\n".join(statements))
        assert await exposure(conn) == []
        assert await conn.fetchval("SELECT to_regclass('public.profiles') IS NOT NULL")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with signed_in(conn, "authenticated", user):
                await conn.fetchval("SELECT pin_hash FROM profiles")
        async with signed_in(conn, "authenticated", user):
            assert await conn.fetchval("SELECT pin_set FROM profiles") is True
            preference = "UPDATE profiles SET biometric_enabled = true RETURNING true"
            assert await conn.fetchval(preference) is True
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with signed_in(conn, "authenticated", user):
                await conn.fetchval("UPDATE profiles SET wallet_balance = 1000000 RETURNING true")
        done = await asyncio.to_thread(cli, env, "check")
        assert done.returncode == 0, done.stderr
        assert "ok: database grants (anon, authenticated and PUBLIC hold only the app's)" in done.stdout
    finally:
        await conn.close()


async def test_production_does_not_serve_a_database_whose_api_roles_hold_extra_grants(
    tmp_path: Path, empty_database: Callable[[], Awaitable[str]], simulator: str
) -> None:
    """`serve` and `mpesa-worker` refuse to run production on such a database, and name `check`, which prints
    the fix."""
    url, _ = await _granted_database(empty_database)
    env = clean_env(tmp_path, DARAJA_ENVIRONMENT="production")
    for _, values in production_fixes(tmp_path, url, simulator):
        env.update(values)
    for command in (["serve", "--port", "0"], ["mpesa-worker", "--seconds", "1"]):
        done = await asyncio.to_thread(cli, env, *command)
        assert done.returncode != 0, done.stdout + done.stderr
        assert "grant(s) the migrations took away" in done.stderr, done.stderr
        assert "`ongea-pesa check` prints the statements" in done.stderr and "Traceback" not in done.stderr
