"""A throttling storm (issue 20): `ongea-pesa mpesa-sim` in its own process refuses a third of all requests
(every third one, OAuth included) with HTTP 500 `500.003.02` / `500.003.03` for a while, as Daraja's spike
arrest and quota do, while two `ongea-pesa serve` processes pay out 200 payouts and take 50 top-ups.

Every payout must be paid exactly once and completed (nothing refunded by mistake), none parked `dead`, every
top-up credited once, and the ledger invariants hold. Before: a throttled request was read as "may have been
sent", so a throttled B2B payout was parked dead, never paid, and a throttled top-up failed the user.

The storm lasts `ONGEA_STORM_SECONDS` (default 20 here; `bench/throttle_storm.py` runs the full minute).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.daraja.conftest import Processes, wait_up
from tests.daraja.test_processes import PAYOUTS
from tests.gate_rules import NO_GATE, gate_rules
from tests.mpesa.conftest import free_port, fresh_phone
from voice_server.auth import mint_user_token

STORM_SECONDS = float(os.environ.get("ONGEA_STORM_SECONDS", "20"))
SECRET = "storm-callback-secret-" + uuid.uuid4().hex
JWT = "storm-jwt-secret-" + uuid.uuid4().hex
PAYOUT_COUNT, TOPUP_COUNT, USERS = 200, 50, 10


@pytest.fixture
async def rules_put_back(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """The servers below write the gate's numbers (no PIN asked: this test is about throttling) into the
    database the run's other tests share; the numbers before are put back after."""
    async with gate_rules(pool):
        yield


async def test_a_third_of_all_requests_throttled_pays_each_payout_once_and_parks_nothing(
    database_url: str, pool: asyncpg.Pool, processes: Processes, tmp_path: Path, rules_put_back: None
) -> None:
    sim_port, ports = free_port(), [free_port(), free_port()]
    sim_url = f"http://127.0.0.1:{sim_port}"
    cert = tmp_path / "sim.cer"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    base.update({"ONGEA_LOG_LEVEL": "WARNING", "ONGEA_DATA_DIR": str(tmp_path / "data")})
    processes.start(
        "sim",
        ["mpesa-sim", "--port", str(sim_port), "--consumer-key", "k", "--consumer-secret", "s",
         "--certificate-out", str(cert), "--delay", "0.05"],
        base,
    )  # fmt: skip
    server_env = dict(base)
    server_env.update({
        "DATABASE_URL": database_url, "DARAJA_BASE_URL": sim_url, "DARAJA_CONSUMER_KEY": "k",
        "DARAJA_CONSUMER_SECRET": "s", "DARAJA_CERTIFICATE_PATH": str(cert),
        "ONGEA_MPESA_CALLBACK_SECRET": SECRET, "ONGEA_JWT_SECRET": JWT,
        "ONGEA_PAYOUT_RECONCILE_AFTER_SECONDS": "5", "ONGEA_MPESA_POLL_SECONDS": "0.1",
        "ONGEA_MPESA_LEASE_SECONDS": "60", "ONGEA_TOPUP_RATE_LIMIT": "100",
        "ONGEA_DB_POOL_MIN": "1", "ONGEA_DB_POOL_MAX": "6",
        "ONGEA_PIN_THRESHOLD": str(NO_GATE["pin_threshold"]),
        "ONGEA_NO_PIN_COUNT": str(NO_GATE["no_pin_count"]),
        "ONGEA_NO_PIN_AMOUNT": str(NO_GATE["no_pin_amount"]),
    })  # fmt: skip
    async with aiohttp.ClientSession() as http:
        await wait_up(f"{sim_url}/simulator/payouts", processes)
        servers = [f"http://127.0.0.1:{port}" for port in ports]
        for name, port, url in zip(("a", "b"), ports, servers, strict=True):
            processes.start(
                f"serve-{name}", ["serve", "--port", str(port)], dict(server_env, ONGEA_PUBLIC_URL=url)
            )
        for url in servers:
            await wait_up(f"{url}/healthz", processes)
        async with http.post(
            f"{sim_url}/simulator/behaviour", json={"throttle": {"every": 3, "seconds": STORM_SECONDS}}
        ) as resp:
            assert resp.status == 200
        storm_ends = asyncio.get_running_loop().time() + STORM_SECONDS

        ledger = Ledger(pool)
        users = [
            (await create_user(pool, fresh_phone(), balance=Decimal("100000"), plan="pro")).user_id
            for _ in range(USERS)
        ]

        async def pay(n: int) -> uuid.UUID:
            type_, fields = PAYOUTS[n % len(PAYOUTS)]
            request = ProposalRequest(type=type_, amount=Decimal(100 + n), **fields)  # type: ignore[arg-type]
            proposal = await ledger.propose(users[n % USERS], request)
            await ledger.confirm(proposal.id, users[n % USERS], proposal.version, voice_verified=True)
            return proposal.id

        async def top_up(n: int) -> str:
            token = mint_user_token(JWT, users[n % USERS], ttl_seconds=600)
            async with http.post(
                f"{servers[n % 2]}/v1/topups", json={"amount": 50 + n},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:  # fmt: skip
                assert resp.status == 201, await resp.text()
                checkout: str = (await resp.json())["checkout_request_id"]
                return checkout

        # Spread over the storm: a payout every so often, a top-up every fourth one.
        pause = STORM_SECONDS * 0.8 / PAYOUT_COUNT
        txs: list[uuid.UUID] = []
        topups: list[asyncio.Task[str]] = []
        for n in range(PAYOUT_COUNT):
            txs.append(await pay(n))
            if n % 4 == 0 and len(topups) < TOPUP_COUNT:
                topups.append(asyncio.create_task(top_up(n)))
            await asyncio.sleep(pause)
        checkouts = await asyncio.gather(*topups)
        assert len(checkouts) == TOPUP_COUNT

        deadline = max(storm_ends, asyncio.get_running_loop().time()) + 240
        while True:
            open_txs = await pool.fetchval(
                "SELECT count(*) FROM transactions WHERE id = ANY($1::uuid[]) AND status = 'processing'", txs
            )
            open_topups = await pool.fetchval(
                "SELECT count(*) FROM mpesa_transactions"
                " WHERE checkout_request_id = ANY($1) AND status = 'pending'",
                checkouts,
            )
            if open_txs == 0 and open_topups == 0:
                break
            assert asyncio.get_running_loop().time() < deadline, (
                f"{open_txs} payouts, {open_topups} top-ups open\n{processes.logs()}"
            )
            await asyncio.sleep(0.5)

        async with http.get(f"{sim_url}/simulator/payouts") as resp:
            sim_state = await resp.json()
        assert sim_state["throttled"] >= (PAYOUT_COUNT + TOPUP_COUNT) // 3  # the storm really happened
        statuses = await pool.fetch("SELECT status FROM transactions WHERE id = ANY($1::uuid[])", txs)
        assert [r["status"] for r in statuses] == ["completed"] * PAYOUT_COUNT  # nothing refunded
        for tx in txs:
            paid = [
                p for p in sim_state["payouts"]
                if p["originator_conversation_id"] == str(tx) or p["result_url"].endswith(f"/{tx}")
            ]  # fmt: skip
            assert len(paid) == 1, (tx, paid)  # paid exactly once
        parked = await pool.fetchval(
            "SELECT count(*) FROM payout_outbox WHERE transaction_id = ANY($1::uuid[]) AND status = 'dead'",
            txs,
        )
        assert parked == 0
        ever_parked = await pool.fetchval(
            "SELECT count(*) FROM payout_outbox WHERE transaction_id = ANY($1::uuid[])"
            " AND last_error LIKE '%not resent%'",
            txs,
        )
        assert ever_parked == 0
        credited = await pool.fetch(
            "SELECT status FROM mpesa_transactions WHERE checkout_request_id = ANY($1)", checkouts
        )
        assert [r["status"] for r in credited] == ["completed"] * TOPUP_COUNT
        assert all(p.poll() is None for p in processes.procs), processes.logs()
        assert await check_invariants(pool, users) == []
