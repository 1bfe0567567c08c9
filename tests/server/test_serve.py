"""`ongea-pesa serve` as a user runs it: a real process, real HTTP, a real database."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from ledger.db import create_pool
from tests.serving import ServeProcess, a_round_passes, poll_until

METRICS_TOKEN = "serve-test-metrics-token"
METRICS_HEADERS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    return {
        **clean,
        "ONGEA_DATA_DIR": str(tmp_path / "data"),
        "ONGEA_LOG_LEVEL": "INFO",
        "ONGEA_METRICS_TOKEN": METRICS_TOKEN,
    }


@pytest.fixture
def served(database_url: str, env: dict[str, str]) -> Iterator[str]:
    server = ServeProcess(["--database-url", database_url], env, limit=180)  # a hang guard
    assert any("M-Pesa simulator" in line for line in server.lines), "no word in the log of the simulator"
    yield server.base
    assert server.stop() == 0


async def test_health_metrics_and_json_errors(served: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{served}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["database"] == "ok"
        async with http.get(f"{served}/no/such/thing") as r:
            assert r.status == 404
            body = await r.json()
            assert body["error"]["code"] == "not_found"
        async with http.get(f"{served}/metrics", headers=METRICS_HEADERS) as r:
            assert r.status == 200
            text = await r.text()
            assert 'ongea_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
            assert 'status="404"' in text
            assert 'ongea_payouts{status="dead"}' in text
            assert "ongea_payouts_processing_over_an_hour" in text


@pytest.fixture
def cli_user(database_url: str, env: dict[str, str]) -> dict[str, str]:
    """A user made the way a developer makes one: `ongea-pesa user add ... --json`."""
    phone = f"0745 {random.randrange(10**6):06d}"
    args = [
        "user",
        "add",
        "--phone",
        phone,
        "--balance",
        "100",
        "--json",
        "--database-url",
        database_url,
    ]
    made = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args], env=env, capture_output=True, text=True, check=True
    )
    user: dict[str, str] = json.loads(made.stdout)
    return user


async def test_topup_through_the_simulator_credits_the_wallet_once(
    served: str, database_url: str, cli_user: dict[str, str]
) -> None:
    """What a person sees: a user made by the CLI tops up 500 and, after M-Pesa's callback, has 500 more."""
    user = cli_user
    headers = {"Authorization": f"Bearer {user['token']}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{served}/v1/topups", json={"amount": 500}, headers=headers) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["phone"] == user["phone"]
        async with http.post(f"{served}/v1/topups", json={"amount": "-5"}, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "invalid_amount"
        async with http.post(f"{served}/v1/topups", json={"amount": 500}) as r:
            assert r.status == 401
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:

        async def wallet() -> Decimal:
            value: Decimal = await pool.fetchval(
                "SELECT wallet_balance FROM profiles WHERE id = $1", user["user_id"]
            )
            return value

        async def credited() -> bool:
            return await wallet() == Decimal("600.00")

        await poll_until("the top-up credited", credited)
        await a_round_passes(pool)  # a second background round must not credit it again
        assert await wallet() == Decimal("600.00")
    finally:
        await pool.close()
    async with aiohttp.ClientSession() as http, http.get(f"{served}/metrics", headers=METRICS_HEADERS) as r:
        assert 'ongea_mpesa_callbacks_total{kind="stk",outcome="credited"} 1.0' in await r.text()


async def test_openapi_describes_the_http_side_from_the_models(served: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{served}/openapi.json") as r:
        assert r.status == 200
        doc = await r.json()
    assert doc["openapi"].startswith("3.")
    assert {"/healthz", "/metrics", "/v1/topups", "/v1/callbacks/{secret}/{kind}"} <= set(doc["paths"])
    amount = doc["components"]["schemas"]["TopupRequest"]["properties"]["amount"]
    assert "whole shillings" in amount["description"]
    assert "201" in doc["paths"]["/v1/topups"]["post"]["responses"]


async def test_bad_topup_bodies_get_4xx_never_500(served: str, cli_user: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {cli_user['token']}", "Content-Type": "application/json"}
    bodies = [
        b"[" * 60000,
        b'{"a":' * 10000 + b"1" + b"}" * 10000,
        b"\xff\xfe",
        b"",
        b"null",
        b'{"amount": NaN}',
    ]
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            async with http.post(f"{served}/v1/topups", data=body, headers=headers) as r:
                assert r.status == 400, (body[:20], await r.text())
                assert (await r.json())["error"]["code"] in {"invalid_json", "invalid_amount"}
