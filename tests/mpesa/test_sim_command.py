"""`ongea-pesa mpesa-sim` runs the simulator alone: a real process answering Daraja's OAuth and STK push."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from ledger.daraja.client import DarajaClient, DarajaConfig
from tests.mpesa.conftest import free_port
from tests.serving import wait_healthy


async def test_mpesa_sim_command_serves_daraja(tmp_path: Path) -> None:
    port = free_port()
    cert = tmp_path / "sim.cer"
    proc = subprocess.Popen(  # noqa: ASYNC220 - a short-lived child, started once
        [sys.executable, "-m", "voice_server.cli", "mpesa-sim", "--port", str(port), "--certificate-out",
         str(cert), "--delay", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        up = await wait_healthy(f"{base}/simulator/requests", tries=1200, pause=0.05, proc=proc)
        assert up, "mpesa-sim did not start"
        config = DarajaConfig(
            base_url=base, consumer_key="k", consumer_secret="s", shortcode="174379",
            passkey="bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
            b2c_shortcode="600000",
            initiator_name="testapi", initiator_password="Safaricom999!*!", certificate=cert.read_bytes(),
        )  # fmt: skip
        async with DarajaClient(config) as client:
            answer = await client.b2c(
                originator_conversation_id="cli-1", amount=Decimal("10"), phone="0712345678",
                result_url="http://127.0.0.1:9/r", timeout_url="http://127.0.0.1:9/t", remarks="r",
            )  # fmt: skip
            assert answer.ResponseCode == "0"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert b"simulator listening on" in out


def test_production_like_needs_credentials_and_callbacks_to_needs_a_public_url(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "ONGEA_DATA_DIR": str(tmp_path)}
    refused = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "mpesa-sim", "--port", "0", "--production-like"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert refused.returncode == 2 and "--production-like needs --consumer-key" in refused.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "mpesa-sim", "--port", "0", "--callbacks-to", "http://x"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert refused.returncode == 2 and "--callbacks-to needs ONGEA_PUBLIC_URL" in refused.stderr
