"""Crash tests of the real `ongea-pesa serve` (issue 7): the process is SIGKILLed at each point of a payout,
a top-up and a C2B deposit (`ONGEA_FAULT` arms `ledger.faults.fault_point`), including between recording
a callback and applying it; after a restart every payment is credited or paid exactly once (or, when the
customer never paid, not at all) and every invariant holds."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from daraja_sim import Simulator
from ledger.c2b import PULL_PATH
from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.mpesa.conftest import free_port, fresh_phone
from tests.serving import FaultProcess, a_round_passes, hold_other_payouts, poll_until
from voice_server.auth import mint_user_token

JWT_SECRET = "crash-jwt-secret-" + uuid.uuid4().hex
CALLBACK_SECRET = "crash-callback-secret-" + uuid.uuid4().hex[:12]
PAYBILL = "600000"


@dataclass
class Rig:
    sim: Simulator
    server: FaultProcess
    pool: asyncpg.Pool
    ledger: Ledger

    async def until(self, query: str, *args: object, limit: float = 40.0) -> None:
        deadline = asyncio.get_running_loop().time() + limit
        while not await self.pool.fetchval(query, *args):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not reached: {query} {args}\n" + self.server.tail())
            await asyncio.sleep(0.1)


@pytest.fixture
async def rig(pool: asyncpg.Pool, database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    sim = Simulator(consumer_key="crash-key", consumer_secret="crash-secret", callback_delay=0.5)
    await sim.start()
    cert = tmp_path / "daraja.cer"
    cert.write_bytes(sim.certificate)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    env.update(
        DARAJA_BASE_URL=sim.base_url,
        DARAJA_CONSUMER_KEY="crash-key",
        DARAJA_CONSUMER_SECRET="crash-secret",
        DARAJA_CERTIFICATE_PATH=str(cert),
        DARAJA_INITIATOR_PASSWORD=sim.initiator_password,
        ONGEA_PORT=str(port),
        ONGEA_PUBLIC_URL=f"http://127.0.0.1:{port}",
        ONGEA_MPESA_CALLBACK_SECRET=CALLBACK_SECRET,
        ONGEA_JWT_SECRET=JWT_SECRET,
        ONGEA_PAYOUT_RECONCILE_AFTER_SECONDS="1",
        ONGEA_MPESA_POLL_SECONDS="0.05",
        ONGEA_MPESA_LEASE_SECONDS="1",
        ONGEA_DATA_DIR=str(tmp_path / "data"),
        ONGEA_DB_POOL_MIN="1",
        ONGEA_DB_POOL_MAX="5",  # the test server is shared by many runs: few connections each
    )
    server = FaultProcess(
        [sys.executable, "-m", "voice_server.cli", "serve", "--database-url", database_url],
        env,
        tmp_path / "serve.log",
        base=f"http://127.0.0.1:{port}",
        start_tries=2400,  # 120 s: a hang guard (a loaded machine starts Python slowly)
        kill_limit=20.0,
        stop_grace=15,
    )
    try:
        yield Rig(sim, server, pool, Ledger(pool))
    finally:
        server.stop()
        await sim.stop()


async def _user(pool: asyncpg.Pool, balance: str) -> uuid.UUID:
    return (await create_user(pool, fresh_phone(), balance=Decimal(balance), plan="pro")).user_id


@pytest.mark.parametrize(
    "fault",
    [
        "after_commit_before_send",
        "after_send_before_record",
        "callback_before_record",
        "callback_after_record",
    ],
)
async def test_a_payout_is_paid_exactly_once_whatever_the_crash(rig: Rig, fault: str) -> None:
    user = await _user(rig.pool, "5000")
    txs = []
    for i in range(3):
        request = ProposalRequest.build(type="send_phone", amount=str(100 + i), phone="0712345678")
        proposal = await rig.ledger.propose(user, request)
        await rig.ledger.confirm(proposal.id, user, proposal.version, voice_verified=True)
        txs.append(proposal.id)
    await hold_other_payouts(rig.pool, txs)
    await rig.server.start(fault)
    assert await rig.server.wait_killed() == -9, rig.server.tail()
    assert {
        r["status"] for r in await rig.pool.fetch("SELECT status FROM transactions WHERE id = ANY($1)", txs)
    } == {"processing"}
    await rig.sim.idle()
    await rig.server.start(None)
    await rig.until(
        "SELECT bool_and(status = 'completed') FROM transactions WHERE id = ANY($1::uuid[])", txs, limit=60
    )
    rig.server.stop()
    for tx in txs:
        accepted = [p for p in rig.sim.payouts.values() if p.originator_conversation_id == str(tx)]
        assert len(accepted) == 1, f"{fault}: {tx} accepted {len(accepted)} times"
        reasons = [r["reason"] for r in await rig.pool.fetch(
            "SELECT reason FROM balance_history WHERE transaction_id = $1 ORDER BY seq", tx)]  # fmt: skip
        assert reasons == ["debit", "fee"]
    assert await check_invariants(rig.pool, [user]) == []


async def _post_topup(rig: Rig, user: uuid.UUID, amount: int) -> int | None:
    token = mint_user_token(JWT_SECRET, user, ttl_seconds=600)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{rig.server.base}/v1/topups",
                json={"amount": amount},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp,
        ):
            await resp.read()
            return resp.status
    except aiohttp.ClientError:
        return None  # the server died while answering


@pytest.mark.parametrize(
    "fault", ["topup_before_push", "topup_after_push", "callback_before_record", "callback_after_record"]
)
async def test_a_topup_is_credited_exactly_once_whatever_the_crash(rig: Rig, fault: str) -> None:
    user = await _user(rig.pool, "0")
    await rig.server.start(fault)
    status = await _post_topup(rig, user, 777)
    assert await rig.server.wait_killed() == -9, rig.server.tail()
    assert status in (None, 201)
    await rig.sim.idle()
    row = await rig.pool.fetchrow("SELECT * FROM mpesa_transactions WHERE user_id = $1", user)
    paid = [s for s in rig.sim.stk.values() if s.account_reference == row["account_reference"] and s.success]
    assert row["status"] == "pending" and await rig.pool.fetchval(
        "SELECT wallet_balance FROM profiles WHERE id = $1", user
    ) == Decimal("0.00")
    pulls = len(rig.sim.requests_to(PULL_PATH))
    await rig.server.start(None)
    if fault == "topup_before_push":
        assert paid == []  # the prompt never left: nothing to credit, ever
        # Rounds go by, a Pull Transactions for the lost push included, and find nothing to credit.
        await poll_until(
            "a Pull Transactions after the restart",
            lambda: len(rig.sim.requests_to(PULL_PATH)) > pulls,
            wait=40,
        )
    else:
        assert len(paid) == 1
        await rig.until("SELECT status = 'completed' FROM mpesa_transactions WHERE id = $1", row["id"])
    await a_round_passes(rig.pool)  # more rounds: nothing credits it (again)
    rig.server.stop()
    wallet = await rig.pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user)
    assert wallet == Decimal(777 * len(paid))
    credits = await rig.pool.fetchval("SELECT count(*) FROM balance_history WHERE topup_id = $1", row["id"])
    assert credits == len(paid)
    assert await check_invariants(rig.pool, [user]) == []


@pytest.mark.parametrize("fault", ["callback_before_record", "callback_after_record"])
async def test_a_deposit_is_credited_exactly_once_whatever_the_crash(rig: Rig, fault: str) -> None:
    user = await _user(rig.pool, "0")
    proposal = await rig.ledger.propose(
        user, ProposalRequest.build(type="bank_to_mpesa", amount="2500", bank_code="01")
    )
    result = await rig.ledger.confirm(proposal.id, user, proposal.version, voice_verified=True)
    assert result.account_reference is not None
    await rig.server.start(fault)
    # Registered at start-up, not in simulator mode (the server was given Daraja credentials).
    registered = rig.sim.c2b_urls[PAYBILL]["ConfirmationURL"]
    assert registered.startswith(f"{rig.server.base}/v1/callbacks/") and registered.endswith(
        "/c2b/confirmation"
    )
    rig.sim.c2b_register_once = True  # as production: the restart's registration answers 500.003.1001
    payment = await rig.sim.c2b_pay(PAYBILL, Decimal("2500"), result.account_reference)
    assert await rig.server.wait_killed() == -9, rig.server.tail()
    assert payment.validated == "0"  # the server accepted it, then died on the confirmation
    # Old enough for Pull Transactions to look for a missed confirmation.
    await rig.pool.execute(
        "UPDATE c2b_expected_deposits SET created_at = now() - interval '1 hour' WHERE transaction_id = $1",
        proposal.id,
    )
    await rig.server.start(None)
    await rig.until("SELECT status = 'completed' FROM transactions WHERE id = $1", proposal.id)
    await a_round_passes(rig.pool)  # more rounds: nothing credits it again
    rig.server.stop()
    assert "already_registered" in rig.server.log_path.read_text()  # and the server ran on
    row = await rig.pool.fetchrow("SELECT * FROM transactions WHERE id = $1", proposal.id)
    assert row["mpesa_transaction_id"] == payment.trans_id
    assert await rig.pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user) == Decimal(
        "2487.50"
    )
    assert (
        await rig.pool.fetchval("SELECT count(*) FROM c2b_deposits WHERE trans_id = $1", payment.trans_id)
        == 1
    )
    assert await check_invariants(rig.pool, [user]) == []
