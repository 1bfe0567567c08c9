"""The `ongea-pesa` command agrees with the API and says what it means (issue 24): `user add --pin` refuses
the PINs `PUT /v1/me/pin` refuses, by the same rule; `token` takes a phone number as `user show` does; values
out of range and unknown flags are named by their flag; `user list` has a header; "using database ..." is
the first line `serve` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.pins import weak_pin_reason
from tests.ledger.conftest import fresh_phone
from tests.serving import ServeProcess
from voice_server.app_api.models import PinChange
from voice_server.auth import verify_user_token

SECRET = "cli-says-jwt-secret-" + "z" * 24


def ongea(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    env.pop("DATABASE_URL", None)
    env.update(ONGEA_JWT_SECRET=SECRET, ONGEA_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


WEAK = ["1111", "000000", "1234", "9876", "34567", "1212", "123123", "4321"]


@pytest.mark.parametrize("pin", WEAK)
def test_user_add_refuses_the_pins_the_api_refuses(pin: str, database_url: str, tmp_path: Path) -> None:
    # The API's own model refuses it ...
    with pytest.raises(ValueError, match=r"weak_pin|cannot be"):
        PinChange.model_validate({"pin": pin})
    # ... and so does the command, with the same words, creating nobody.
    phone = fresh_phone()
    done = ongea(
        "user", "add", "--phone", phone, "--pin", pin, "--database-url", database_url, data_dir=tmp_path
    )
    assert done.returncode == 2, done.stdout
    assert "--pin" in done.stderr and str(weak_pin_reason(pin)) in done.stderr and "weak_pin" in done.stderr
    assert "Traceback" not in done.stderr
    shown = ongea("user", "show", phone, "--database-url", database_url, data_dir=tmp_path)
    assert shown.returncode == 2 and "no user" in shown.stderr


def test_token_takes_a_phone_number_like_user_show(database_url: str, tmp_path: Path) -> None:
    phone = fresh_phone()
    made = ongea(
        "user",
        "add",
        "--phone",
        phone,
        "--pin",
        "7392",
        "--json",
        "--database-url",
        database_url,
        data_dir=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    user_id = json.loads(made.stdout)["user_id"]
    for who in (phone, "0" + phone[3:], "+" + phone, user_id):
        token = ongea("token", who, "--database-url", database_url, data_dir=tmp_path)
        assert token.returncode == 0, (who, token.stderr)
        assert str(verify_user_token(SECRET, token.stdout.strip())) == user_id
    unknown = ongea("token", fresh_phone(), "--database-url", database_url, data_dir=tmp_path)
    assert unknown.returncode == 2 and "no user" in unknown.stderr


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "inf", "high"])
def test_asr_confidence_outside_0_to_1_is_refused(value: str, tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.json"
    contacts.write_text("[]")
    done = ongea(
        "parse",
        "--contacts",
        str(contacts),
        "--asr-confidence",
        value,
        "send 500 to 0712345678",
        data_dir=tmp_path,
    )
    assert done.returncode == 2 and "--asr-confidence" in done.stderr, done
    assert done.stdout == ""
    fine = ongea(
        "parse",
        "--contacts",
        str(contacts),
        "--asr-confidence",
        "0.9",
        "send 500 to 0712345678",
        data_dir=tmp_path,
    )
    assert fine.returncode == 0 and json.loads(fine.stdout)["amount"] == "500.00"


@pytest.mark.parametrize("command", [["serve"], ["mpesa-sim"]])
@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_bad_port_is_named_as_the_flag(command: list[str], port: str, tmp_path: Path) -> None:
    done = ongea(*command, "--port", port, data_dir=tmp_path)
    assert done.returncode == 2 and "argument --port" in done.stderr, done.stderr
    assert "ONGEA_PORT" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["user", "--bogus"],
        ["user", "add", "--bogus"],
        ["serve", "--bogus"],
        ["token", "--bogus"],
    ],
)
def test_a_bad_flag_is_named(args: list[str], tmp_path: Path) -> None:
    done = ongea(*args, data_dir=tmp_path)
    assert done.returncode == 2 and "--bogus" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_user_list_has_a_header(database_url: str, tmp_path: Path) -> None:
    ongea("user", "add", "--phone", fresh_phone(), "--database-url", database_url, data_dir=tmp_path)
    listed = ongea("user", "list", "--limit", "3", "--database-url", database_url, data_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["USER", "ID", "PHONE", "BALANCE", "PLAN"], header
    assert rows and all("KES" in row for row in rows)


@pytest.mark.parametrize("embedded", [False, True], ids=["database-url", "embedded"])
def test_using_database_is_the_first_line_serve_prints(
    embedded: bool, database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    env.pop("DATABASE_URL", None)
    env.update(ONGEA_DATA_DIR=str(tmp_path / "data"), ONGEA_LOG_LEVEL="INFO")
    server = ServeProcess([] if embedded else ["--database-url", database_url], env, limit=180)
    try:
        first = server.output().splitlines()[0]
    finally:
        server.stop()
    assert first.startswith("ongea-pesa: using "), server.output()[:2000]
    assert ("embedded PostgreSQL" in first) == embedded
