"""`ongea-pesa user add` and `ongea-pesa token`, run as a person would: a subprocess on a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg

from ledger.pins import verify_pin
from voice_server.auth import verify_user_token

from .conftest import fresh_phone

SECRET = "cli-test-jwt-secret-" + "y" * 24


def ongea(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONGEA_JWT_SECRET": SECRET, "ONGEA_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def test_user_add_creates_a_user_and_a_token(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    phone = fresh_phone()
    local = "0" + phone[3:]
    done = ongea(
        [
            "user",
            "add",
            "--phone",
            local,
            "--balance",
            "2500.50",
            "--plan",
            "basic",
            "--pin",
            "4831",
            "--json",
            "--database-url",
            database_url,
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["phone"], out["balance"]) == (phone, "2500.50")
    user_id = uuid.UUID(out["user_id"])
    assert verify_user_token(SECRET, out["token"]) == user_id

    profile = await pool.fetchrow("SELECT * FROM profiles WHERE id = $1", user_id)
    assert (profile["phone_number"], profile["mpesa_number"], profile["wallet_balance"]) == (
        phone,
        phone,
        Decimal("2500.50"),
    )
    assert profile["pin_hash"].startswith("$argon2") and "4831" not in profile["pin_hash"]
    assert verify_pin(profile["pin_hash"], "4831") and not verify_pin(profile["pin_hash"], "1234")
    assert await pool.fetchval("SELECT phone FROM auth.users WHERE id = $1", user_id) == phone
    sub = await pool.fetchrow("SELECT * FROM subscriptions WHERE user_id = $1", user_id)
    assert (
        sub["plan_type"],
        sub["status"],
        sub["transaction_fee_percentage"],
        sub["monthly_transaction_limit"],
    ) == ("basic", "active", Decimal("0.0100"), 50)
    opening = await pool.fetch("SELECT * FROM balance_history WHERE user_id = $1", user_id)
    assert [(r["previous_balance"], r["new_balance"], r["transaction_id"], r["reason"]) for r in opening] == [
        (Decimal("0"), Decimal("2500.50"), None, "opening_balance")
    ]

    token = ongea(["token", str(user_id), "--database-url", database_url], tmp_path)
    assert token.returncode == 0, token.stderr
    assert verify_user_token(SECRET, token.stdout.strip()) == user_id

    again = ongea(["user", "add", "--phone", phone, "--database-url", database_url], tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


async def test_cli_refusals_are_clear(database_url: str, tmp_path: Path) -> None:
    cases = [
        (["user", "add", "--phone", "12345"], "phone"),
        (["user", "add", "--phone", fresh_phone(), "--pin", "12"], "PIN"),
        (["user", "add", "--phone", fresh_phone(), "--balance", "-5"], "negative"),
        (["user", "add", "--phone", fresh_phone(), "--balance", "abc"], "amount"),
        (["token", str(uuid.uuid4())], "no user"),
        (["token", "not-a-uuid"], "neither a user id nor a Kenyan mobile number"),
    ]
    for args, words in cases:
        done = ongea([*args, "--database-url", database_url], tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert words in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    plain = ongea(["user", "add", "--phone", fresh_phone(), "--database-url", database_url], tmp_path)
    assert plain.returncode == 0 and "user_id:" in plain.stdout and "token:" in plain.stdout
