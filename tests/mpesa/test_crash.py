"""Crash tests: the server process is SIGKILLed at the dangerous moments of a payout, then restarted.

1. after the ledger committed (the outbox row exists) and before the gateway was called;
2. after the gateway accepted the payout and before anything was recorded (the result callback then hits
   a dead process and is lost);
3. when the result callback arrives, before it is recorded.

After the restart each payout must have been accepted by the gateway exactly once (the simulator refuses a
reused OriginatorConversationID, as Daraja does), be settled exactly once, and the ledger invariants hold.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from daraja_sim import Behaviour, Simulator
from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.gate_rules import confirm_as_a_person
from tests.mpesa.conftest import CALLBACK_SECRET, free_port, fresh_phone
from tests.serving import FaultProcess, hold_other_payouts

SERVER = Path(__file__).with_name("crash_server.py")


@pytest.fixture
async def crash_env(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Simulator, FaultProcess]]:
    sim = Simulator(consumer_key="crash-key", consumer_secret="crash-secret", callback_delay=0.05)
    await sim.start()
    cert = tmp_path / "daraja.cer"
    cert.write_bytes(sim.certificate)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DARAJA_BASE_URL": sim.base_url,
        "DARAJA_CONSUMER_KEY": "crash-key",
        "DARAJA_CONSUMER_SECRET": "crash-secret",
        "DARAJA_CERTIFICATE_PATH": str(cert),
        "DARAJA_INITIATOR_PASSWORD": sim.initiator_password,
        "ONGEA_HOST": "127.0.0.1",
        "ONGEA_PORT": str(port),
        "ONGEA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ONGEA_MPESA_CALLBACK_SECRET": CALLBACK_SECRET,
        "ONGEA_PAYOUT_RECONCILE_AFTER_SECONDS": "1",
        "ONGEA_DATA_DIR": str(tmp_path / "data"),
    }
    server = FaultProcess(
        [sys.executable, str(SERVER)],
        env,
        tmp_path / "server.log",
        base=f"http://127.0.0.1:{port}",
        # Hang guards, not timed checks: at a load of 22 on two cores, importing the server's modules alone
        # took 27 s, so a 30 s start limit (and a 15 s one for the first round's send) failed crash tests
        # whose payouts were fine. As the money crash rig: 120 s; pytest-timeout still ends a hang.
        start_tries=2400,
        kill_limit=60.0,
        stop_grace=10,
    )
    try:
        yield sim, server
    finally:
        server.stop()
        await sim.stop()


async def _confirmed_payouts(pool: asyncpg.Pool, count: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    ledger = Ledger(pool)
    user = (await create_user(pool, fresh_phone(), balance=Decimal("50000"), plan="pro", pin="2580")).user_id
    txs = []
    for i in range(count):
        request = ProposalRequest(type="send_phone", amount=Decimal(100 + i), phone="0712345678")  # type: ignore[arg-type]
        proposal = await ledger.propose(user, request)
        await confirm_as_a_person(ledger, proposal.id, user, proposal.version, pin="2580")
        txs.append(proposal.id)
    return user, txs


async def _all_settled(pool: asyncpg.Pool, txs: list[uuid.UUID], limit: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        statuses = await pool.fetch("SELECT status FROM transactions WHERE id = ANY($1::uuid[])", txs)
        if all(r["status"] in ("completed", "failed") for r in statuses):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not settled: {[r['status'] for r in statuses]}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "fault", ["after_commit_before_send", "after_send_before_record", "callback_before_record"]
)
async def test_payouts_survive_sigkill(
    pool: asyncpg.Pool, crash_env: tuple[Simulator, FaultProcess], fault: str
) -> None:
    sim, server = crash_env
    if fault == "callback_before_record":
        sim.default = Behaviour(delay=0.5)  # let the worker record 'sent' before the callback arrives
    user, txs = await _confirmed_payouts(pool, 3)
    await hold_other_payouts(pool, txs)

    await server.start(fault)
    assert await server.wait_killed() == -9, "the process must die by SIGKILL at the fault point"
    statuses = {
        r["status"] for r in await pool.fetch("SELECT status FROM transactions WHERE id = ANY($1)", txs)
    }
    assert statuses == {"processing"}, "nothing may settle while the process is dead"
    if fault == "after_commit_before_send":
        assert all(sim.sent_payouts(str(t)) == [] for t in txs)
    else:
        assert any(str(t) in sim.payouts for t in txs), "the gateway accepted a payout before the crash"
    await sim.idle()  # callbacks to the dead process fail: lost, as they would be in real life

    sim.default = Behaviour()
    await server.start(None)
    await _all_settled(pool, txs)
    await sim.idle()

    for tx in txs:
        accepted = [p for p in sim.payouts.values() if p.originator_conversation_id == str(tx)]
        requests = sim.sent_payouts(str(tx))
        assert len(accepted) == 1, f"{tx}: accepted {len(accepted)} times"
        assert 1 <= len(requests) <= 2  # a resend after the crash is refused by the gateway as a duplicate
        row = await pool.fetchrow("SELECT status, mpesa_transaction_id FROM transactions WHERE id = $1", tx)
        assert row["status"] == "completed" and row["mpesa_transaction_id"] == accepted[0].receipt
        reasons = [r["reason"] for r in await pool.fetch(
            "SELECT reason FROM balance_history WHERE transaction_id = $1 ORDER BY seq", tx)]  # fmt: skip
        assert reasons == ["debit", "fee"]
        outbox = await pool.fetchrow("SELECT status FROM payout_outbox WHERE transaction_id = $1", tx)
        assert outbox["status"] == "settled"
    if fault == "after_commit_before_send":
        assert all(len(sim.sent_payouts(str(t))) == 1 for t in txs)
    if fault != "after_commit_before_send":
        assert any(d.error for d in sim.deliveries), "a callback was lost while the process was dead"
        queried = await pool.fetchval(
            "SELECT count(DISTINCT transaction_id) FROM mpesa_status_queries WHERE transaction_id = ANY($1)",
            txs,
        )
        assert queried >= 1, "a lost callback is recovered by a status query"
    if fault == "after_send_before_record":
        assert any(len(sim.sent_payouts(str(t))) == 2 for t in txs), "the resend was answered as a duplicate"
        notes = await pool.fetch("SELECT last_error FROM payout_outbox WHERE transaction_id = ANY($1)", txs)
        assert any("already sent" in (r["last_error"] or "") for r in notes)
    server.stop()
    assert await check_invariants(pool, [user]) == []
