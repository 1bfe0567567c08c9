"""Two `ongea-pesa serve` processes and the CLI (`ongea-pesa mpesa-worker`) on one database, paying out and
topping up at the same time against `ongea-pesa mpesa-sim` in its own process, whose tokens live 8 seconds
and each new one invalidates the last (so the processes keep refreshing under each other's feet).

Every payout must be paid exactly once and completed (none refunded by mistake), every top-up credited once,
and the ledger invariants hold. Before: each process kept its own token and knocked out the others'; the
B2B and STK token codes (400.003.01, 404.001.03) were read as refusals, refunding payouts and failing
top-ups at random."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from ledger.daraja.tokens import app_key
from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.daraja.conftest import Processes, wait_up
from tests.gate_rules import confirm_as_a_person
from tests.mpesa.conftest import free_port, fresh_phone
from voice_server.auth import mint_user_token

SECRET = "processes-callback-secret-" + uuid.uuid4().hex
JWT = "processes-jwt-secret-" + uuid.uuid4().hex
PAYOUTS: list[tuple[str, dict[str, str]]] = [
    ("send_phone", {"phone": "0712345678"}),
    ("buy_goods_pochi", {"phone": "0722000111"}),
    ("buy_goods_till", {"till": "832109"}),
    ("paybill", {"paybill": "888880", "account": "INV7"}),
    ("mpesa_to_bank", {"bank_code": "68", "account": "0123456789"}),
    ("withdraw", {"agent": "123456", "store": "1"}),
]
# Amounts the simulator treats specially: a result code 17 (no verdict), a lost answer, a result that
# overtakes the answer. Everything is paid in the end.
TRICKS: dict[int, dict[str, Any]] = {
    1313: {"callback_code": 17},
    1414: {"lose_response": True},
    1515: {"callback": "out_of_order"},
}


async def test_two_servers_and_the_cli_share_one_token_and_pay_each_payout_once(
    database_url: str, pool: asyncpg.Pool, processes: Processes, tmp_path: Path
) -> None:
    sim_port, ports = free_port(), [free_port(), free_port()]
    sim_url = f"http://127.0.0.1:{sim_port}"
    cert = tmp_path / "sim.cer"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    base.update({"ONGEA_LOG_LEVEL": "WARNING", "ONGEA_DATA_DIR": str(tmp_path / "data")})
    processes.start(
        "sim",
        ["mpesa-sim", "--port", str(sim_port), "--consumer-key", "k", "--consumer-secret", "s",
         "--certificate-out", str(cert), "--delay", "0.05", "--token-lifetime", "8"],
        base,
    )  # fmt: skip
    server_env = dict(base)
    server_env.update({
        "DATABASE_URL": database_url, "DARAJA_BASE_URL": sim_url, "DARAJA_CONSUMER_KEY": "k",
        "DARAJA_CONSUMER_SECRET": "s", "DARAJA_CERTIFICATE_PATH": str(cert),
        "ONGEA_MPESA_CALLBACK_SECRET": SECRET, "ONGEA_JWT_SECRET": JWT,
        "ONGEA_PAYOUT_RECONCILE_AFTER_SECONDS": "2", "ONGEA_MPESA_POLL_SECONDS": "0.1",
        "ONGEA_MPESA_LEASE_SECONDS": "5", "ONGEA_TOPUP_RATE_LIMIT": "100",
        "ONGEA_DB_POOL_MIN": "1", "ONGEA_DB_POOL_MAX": "6",
    })  # fmt: skip
    async with aiohttp.ClientSession() as http:
        await wait_up(f"{sim_url}/simulator/payouts", processes)
        async with http.post(
            f"{sim_url}/simulator/behaviour",
            json={"rules": [{"behaviour": b, "amount": a} for a, b in TRICKS.items()]},
        ) as resp:
            assert resp.status == 200
        servers = [f"http://127.0.0.1:{port}" for port in ports]
        for name, port, url in zip(("a", "b"), ports, servers, strict=True):
            env = dict(server_env, ONGEA_PUBLIC_URL=url)
            processes.start(f"serve-{name}", ["serve", "--port", str(port)], env)
        for url in servers:
            await wait_up(f"{url}/healthz", processes)

        ledger = Ledger(pool)
        users = [
            (await create_user(pool, fresh_phone(), balance=Decimal("60000"), plan="pro", pin="2580")).user_id
            for _ in range(6)
        ]
        cli = processes.start(
            "cli",
            ["mpesa-worker", "--seconds", "12", "--interval", "0.1"],
            dict(server_env, ONGEA_PUBLIC_URL=servers[0]),
        )

        async def take_a_token_outside_the_database() -> None:
            """What a process with its own token cache does: every token the others hold is invalidated.
            Taken just after their own refresh (every 4 s here), so that their next request, not a refresh
            of their own, finds it out."""
            for _ in range(200):
                if await pool.fetchval(
                    "SELECT refresh_at > clock_timestamp() + interval '3 seconds' FROM daraja_tokens"
                    " WHERE app = $1",
                    app_key(sim_url, "k"),
                ):
                    break
                await asyncio.sleep(0.05)
            async with http.get(
                f"{sim_url}/oauth/v1/generate", params={"grant_type": "client_credentials"},
                headers={"Authorization": "Basic " + base64.b64encode(b"k:s").decode()},
            ) as resp:  # fmt: skip
                assert resp.status == 200

        async def pay(user: uuid.UUID, n: int) -> uuid.UUID:
            type_, fields = PAYOUTS[n % len(PAYOUTS)]
            amount = list(TRICKS)[n % len(TRICKS)] if n % 4 == 0 else 1000 + 10 * n
            request = ProposalRequest(type=type_, amount=Decimal(amount), **fields)  # type: ignore[arg-type]
            proposal = await ledger.propose(user, request)
            await confirm_as_a_person(ledger, proposal.id, user, proposal.version, pin="2580")
            return proposal.id

        async def top_up(user: uuid.UUID, n: int) -> str:
            token = mint_user_token(JWT, user, ttl_seconds=600)
            async with http.post(
                f"{servers[n % 2]}/v1/topups", json={"amount": 100 + n},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:  # fmt: skip
                assert resp.status == 201, await resp.text()
                checkout: str = (await resp.json())["checkout_request_id"]
                return checkout

        async def work(i: int, user: uuid.UUID) -> tuple[list[uuid.UUID], list[str]]:
            txs, checkouts = [], []
            for n in range(6):
                txs.append(await pay(user, i * 6 + n))
                if i == 0 and n == 3:
                    await take_a_token_outside_the_database()  # then a top-up at once: an STK push
                checkouts.append(await top_up(user, i * 6 + n))
                await asyncio.sleep(0.4)  # spread over several token lifetimes
            return txs, checkouts

        results = await asyncio.gather(*(work(i, u) for i, u in enumerate(users)))
        txs = [tx for r in results for tx in r[0]]
        checkouts = [c for r in results for c in r[1]]

        deadline = asyncio.get_running_loop().time() + 60
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
                f"{open_txs} payouts, {open_topups} top-ups open"
            )
            await asyncio.sleep(0.2)
        assert cli.wait(timeout=30) == 0, processes.logs()

        statuses = await pool.fetch("SELECT id, status FROM transactions WHERE id = ANY($1::uuid[])", txs)
        assert {r["status"] for r in statuses} == {"completed"}, processes.logs()  # nothing refunded
        async with http.get(f"{sim_url}/simulator/payouts") as resp:
            sim_state = await resp.json()
        for tx in txs:
            paid = [
                p for p in sim_state["payouts"]
                if p["originator_conversation_id"] == str(tx) or p["result_url"].endswith(f"/{tx}")
            ]  # fmt: skip
            assert len(paid) == 1, (tx, paid)
        topups = await pool.fetch(
            "SELECT status FROM mpesa_transactions WHERE checkout_request_id = ANY($1)", checkouts
        )
        assert [r["status"] for r in topups] == ["completed"] * len(checkouts)
        # Tokens: refreshed as they aged (8 s lives), one process at a time, shared by all three.
        assert sim_state["token_refusals"] >= 1  # the outside token did knock theirs out; they recovered
        assert sim_state["tokens_issued"] <= 20, sim_state["tokens_issued"]
        row = await pool.fetchrow("SELECT fetches FROM daraja_tokens WHERE app = $1", app_key(sim_url, "k"))
        assert row is not None and row["fetches"] == sim_state["tokens_issued"] - 1  # all but the outsider's
        assert all(p.poll() is None for p in processes.procs if p is not cli), processes.logs()
        assert await check_invariants(pool, users) == []
