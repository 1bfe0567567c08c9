"""Finding 7: production refuses to start on sandbox values, without an HTTPS public URL or with the other
environment's certificate (one clear line each); B2C and B2B shortcodes are set apart; STK to a till sends
BusinessShortCode = store number and PartyB = till."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from daraja_sim import Simulator
from ledger.daraja import client as api
from ledger.daraja.client import DarajaClient
from ledger.daraja.credentials import generate_certificate
from tests.mpesa.conftest import sim_config
from voice_server.settings import Settings

CERTIFICATES = Path(__file__).parent / "certificates"  # Safaricom's real ones (see its README)


def production_certificate(path: Path) -> Path:
    path.write_bytes((CERTIFICATES / "production.cer").read_bytes())
    return path


def production(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DARAJA_ENVIRONMENT": "production",
        "DARAJA_CONSUMER_KEY": "key",
        "DARAJA_CONSUMER_SECRET": "secret",
        "public_url": "https://pay.ongea.example",
        "DARAJA_SHORTCODE": "4123456",
        "DARAJA_PASSKEY": "a-production-passkey",
        "DARAJA_B2C_SHORTCODE": "3001234",
        "DARAJA_B2B_SHORTCODE": "3005678",
        "DARAJA_C2B_SHORTCODE": "4123457",
        "DARAJA_INITIATOR_NAME": "ongea_api",
        "DARAJA_INITIATOR_PASSWORD": "a-strong-initiator-password",
        "DARAJA_CERTIFICATE_PATH": production_certificate(tmp_path / "production.cer"),
        "DARAJA_PULL_NOMINATED_NUMBER": "0711223344",
        "data_dir": tmp_path,
        "DATABASE_URL": "postgresql://ongea@db.internal/ongea",
        "ONGEA_JWT_SECRET": "a-supabase-jwt-secret-of-32-characters-or-more",
        "session_secret": "a-session-secret-of-32-characters-or-more-too",
    }
    values.update(overrides)
    return Settings(**{k: v for k, v in values.items() if v is not None})


def test_a_complete_production_configuration_starts(tmp_path: Path) -> None:
    assert production(tmp_path).startup_refusal() is None


@pytest.mark.parametrize(("override", "line"), [
    ({"DARAJA_CONSUMER_KEY": None}, "DARAJA_ENVIRONMENT=production needs DARAJA_CONSUMER_KEY"),
    ({"public_url": None}, "DARAJA_ENVIRONMENT=production needs ONGEA_PUBLIC_URL to be the https:// URL"),
    ({"public_url": "http://pay.ongea.example"}, "DARAJA_ENVIRONMENT=production needs ONGEA_PUBLIC_URL"),
    ({"DARAJA_SHORTCODE": "174379"}, "DARAJA_SHORTCODE is the sandbox's 174379"),
    ({"DARAJA_PASSKEY": None}, "DARAJA_PASSKEY is the sandbox's passkey"),
    ({"DARAJA_B2C_SHORTCODE": None}, "DARAJA_B2C_SHORTCODE is the sandbox's 600000"),
    ({"DARAJA_B2B_SHORTCODE": None}, "DARAJA_B2B_SHORTCODE must be set in production"),
    ({"DARAJA_INITIATOR_NAME": None}, "DARAJA_INITIATOR_NAME is the sandbox's 'testapi'"),
    ({"DARAJA_INITIATOR_PASSWORD": "Safaricom999!*!"}, "DARAJA_INITIATOR_PASSWORD must be set"),
    ({"DARAJA_CERTIFICATE_PATH": None}, "DARAJA_CERTIFICATE_PATH must name Safaricom's production"),
    ({"DARAJA_PULL_NOMINATED_NUMBER": None}, "DARAJA_PULL_NOMINATED_NUMBER is the portal's sample 0722000"),
    ({"DARAJA_PULL_NOMINATED_NUMBER": "254722000000"}, "DARAJA_PULL_NOMINATED_NUMBER is the portal's sample"),
])  # fmt: skip
def test_each_sandbox_value_or_missing_piece_refuses_production(
    tmp_path: Path, override: dict[str, Any], line: str
) -> None:
    """Before: production ran on the sandbox's shortcode, passkey and initiator without a word."""
    refusal = production(tmp_path, **override).startup_refusal()
    assert refusal is not None and refusal.startswith(line), refusal
    assert "\n" not in refusal


def test_the_certificate_of_the_other_environment_is_refused(tmp_path: Path) -> None:
    """With Safaricom's real certificates. Before (issue 20, 1): the environment was guessed from the word
    "sandbox", which neither contains: the real sandbox certificate refused to start in sandbox, and
    production started with the sandbox certificate."""
    sandbox_cert = CERTIFICATES / "sandbox.cer"
    refusal = production(tmp_path, DARAJA_CERTIFICATE_PATH=sandbox_cert).startup_refusal()
    assert refusal == (
        "DARAJA_CERTIFICATE_PATH is Safaricom's sandbox certificate but DARAJA_ENVIRONMENT is production"
    )
    sandbox = Settings(
        DARAJA_CONSUMER_KEY="k", DARAJA_CONSUMER_SECRET="s", data_dir=tmp_path,  # type: ignore[call-arg]
        DARAJA_CERTIFICATE_PATH=production_certificate(tmp_path / "p.cer"),
    )  # fmt: skip
    assert sandbox.startup_refusal() == (
        "DARAJA_CERTIFICATE_PATH is Safaricom's production certificate but DARAJA_ENVIRONMENT is sandbox"
    )
    with_its_own = Settings(
        DARAJA_CONSUMER_KEY="k", DARAJA_CONSUMER_SECRET="s", data_dir=tmp_path,  # type: ignore[call-arg]
        DARAJA_CERTIFICATE_PATH=sandbox_cert,
    )  # fmt: skip
    assert with_its_own.startup_refusal() is None
    assert production(tmp_path).startup_refusal() is None  # the real production certificate


def test_both_real_certificates_encrypt_a_credential() -> None:
    from ledger.daraja.credentials import certificate_environment, security_credential

    for name, environment in (("sandbox.cer", "sandbox"), ("production.cer", "production")):
        data = (CERTIFICATES / name).read_bytes()
        assert certificate_environment(data) == environment
        assert len(base64.b64decode(security_credential("Safaricom999!*!", data))) == 256  # RSA-2048
    assert certificate_environment(generate_certificate("apisandbox.safaricom.co.ke")[0]) == "unknown"


def test_serve_refuses_to_start_with_one_clear_line_a_problem(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    env.update({"DARAJA_ENVIRONMENT": "production", "DARAJA_CONSUMER_KEY": "k", "DARAJA_CONSUMER_SECRET": "s",
                "DARAJA_C2B_SHORTCODE": "4123457",
                "ONGEA_DATA_DIR": str(tmp_path), "ONGEA_PUBLIC_URL": "http://127.0.0.1:8080"})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 2
    expected = (
        "DARAJA_ENVIRONMENT=production needs ONGEA_PUBLIC_URL to be the https:// URL Daraja calls back on"
    )
    lines = done.stderr.strip().splitlines()
    assert f"ongea-pesa: refusing to start: {expected}" in lines
    assert all(line.startswith("ongea-pesa: refusing to start: ") for line in lines)  # every one at once


async def test_b2c_and_b2b_are_paid_and_queried_from_their_own_shortcodes(sim: Simulator) -> None:
    common: dict[str, Any] = {
        "result_url": "https://e.test/r",
        "timeout_url": "https://e.test/t",
        "remarks": "r",
    }
    async with DarajaClient(sim_config(sim, b2c_shortcode="3001234", b2b_shortcode="3005678")) as c:
        await c.b2c(originator_conversation_id="sc-1", amount=Decimal("10"), phone="0712345678", **common)
        answer = await c.b2b(
            command="BusinessBuyGoods",
            amount=Decimal("10"),
            party_b="832109",
            account_reference="832109",
            **common,
        )
        await c.transaction_status(originator_conversation_id="sc-1", **common)
        await c.transaction_status(originator_conversation_id=answer.ConversationID, b2b=True, **common)
    [b2c] = sim.requests_to(api.B2C_PATH)
    [b2b] = sim.requests_to(api.B2B_PATH)
    assert b2c.body["PartyA"] == "3001234"  # its Utility account pays B2C
    assert b2b.body["PartyA"] == "3005678"  # its Working account pays B2B
    assert [q.body["PartyA"] for q in sim.requests_to(api.STATUS_PATH)] == ["3001234", "3005678"]


async def test_stk_to_a_till_names_the_store_and_the_till(sim: Simulator) -> None:
    """Before: PartyB was the store number, which Daraja refuses for CustomerBuyGoodsOnline."""
    sim.till = "7654321"
    async with DarajaClient(sim_config(sim, stk_till="7654321")) as c:
        answer = await c.stk_push(
            amount=Decimal("10"), phone="0712345678", callback_url="https://e.test/cb",
            account_reference="OngeaPesa", description="Top-up",
        )  # fmt: skip
    assert answer.ResponseCode == "0"
    [push] = sim.requests_to(api.STK_PUSH_PATH)
    assert push.body["TransactionType"] == "CustomerBuyGoodsOnline"
    assert push.body["BusinessShortCode"] == sim.shortcode and push.body["PartyB"] == "7654321"
