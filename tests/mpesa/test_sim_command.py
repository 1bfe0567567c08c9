"""`ongea-pesa mpesa-sim` runs the simulator alone: a real process answering Daraja's OAuth and STK push."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import aiohttp

from ledger.daraja.client import DarajaClient, DarajaConfig
from tests.mpesa.conftest import free_port


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
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{base}/simulator/requests") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
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
