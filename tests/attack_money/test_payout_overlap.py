"""Outside attack on the payout drain: two attempts at one payout overlap (a lease that ran out while the
first waited for its slot of the pace), and the older attempt acts on what it read when it claimed the row.
Real PostgreSQL, the simulator over HTTP, the background loop stopped so the test runs the workers."""

from __future__ import annotations

import asyncio
import dataclasses

from daraja_sim import Behaviour
from ledger.payouts import PayoutWorker
from tests.mpesa.conftest import Harness, held_pace, lease_runs_out


async def test_a_rejection_after_an_overlapping_attempt_may_have_paid_is_not_refunded(idle: Harness) -> None:
    """Worker A claims a B2C payout (attempt 1) and waits for its slot; the lease runs out and worker B claims
    it (attempt 2): B's request reaches M-Pesa and is paid, but its answer is lost (maybe sent: retried
    later). Then A's request goes out and the gateway refuses it (an HTTP 403 of the API gateway). A read
    `attempts = 1` when it claimed, so it took itself for the only attempt and refunded the user: paid at
    M-Pesa and refunded. A refusal after an attempt that may have gone must park the payout, as it does when
    the attempts come one after the other."""
    assert idle.service.client is not None
    config = idle.service.payouts.config if idle.service.payouts else None
    assert config is not None
    held = held_pace()
    a = PayoutWorker(idle.pool, idle.service.client, config, ledger=idle.ledger, pace=held.pace)
    b = PayoutWorker(idle.pool, idle.service.client, config, ledger=idle.ledger)
    user = await idle.user("100000.00")
    idle.sim.add_rule(Behaviour(lose_response=True, callback="none"), amount=731, times=1)
    tx = await idle.confirmed(user, "send_phone", "731", phone="0712345678")
    after_debit = await idle.wallet(user)

    first = asyncio.create_task(a.send_due())
    await asyncio.wait_for(held.waiting.wait(), 10)  # A holds attempt 1 and waits for its slot
    await lease_runs_out(idle, tx)
    assert await b.send_due() >= 1  # attempt 2: processed by M-Pesa, its answer lost
    paid = [p for p in idle.sim.payouts_for(str(tx)) if p.success]
    assert len(paid) == 1  # the money went out
    idle.sim.add_rule(Behaviour(http_error=403), amount=731, times=1)  # A's request is refused
    held.slot.set()
    await first

    row = await idle.tx(tx)
    assert row["status"] != "failed", "refunded although M-Pesa paid it"
    assert await idle.wallet(user) == after_debit  # no refund of a payout that was paid
    outbox = await idle.pool.fetchrow("SELECT status FROM payout_outbox WHERE transaction_id = $1", tx)
    assert outbox["status"] == "dead"  # parked for the status query / a person


async def test_a_slow_pace_never_claims_a_payout_whose_slot_is_beyond_its_lease(idle: Harness) -> None:
    """ONGEA_PAYOUT_RATE_PER_SECOND may be anything above 0 (0.001: a slot every 1,000 s). claim_size keeps a
    claim within half a lease's worth of slots, but the claim's first row still waits for the slot after the
    last one taken: with slots further apart than the lease, a payout claimed right after another waits
    1,000 s holding a 60 s lease. Another worker claims it when the lease runs out and sends it, then the
    first one's slot comes and it is requested again (here the lease is made to run out, as in
    tests/mpesa/test_drain.py). A row must not be claimed before its slot is near."""
    held = held_pace(0.001)  # the payout sent just before: the next slot is 1,000 s away
    assert idle.service.client is not None and idle.service.payouts is not None
    config = dataclasses.replace(idle.service.payouts.config, rate_per_second=0.001)
    a = PayoutWorker(idle.pool, idle.service.client, config, ledger=idle.ledger, pace=held.pace)
    b = PayoutWorker(idle.pool, idle.service.client, idle.service.payouts.config, ledger=idle.ledger)
    user = await idle.user("100000.00")
    tx = await idle.confirmed(user, "send_phone", "733", phone="0712345678")

    first = asyncio.create_task(a.send_due())
    await asyncio.wait_for(held.waiting.wait(), 10)
    leased = await idle.pool.fetchval("SELECT attempts FROM payout_outbox WHERE transaction_id = $1", tx)
    assert leased == 0 or max(held.waits) < config.lease_seconds, "claimed with its slot beyond its lease"
    await lease_runs_out(idle, tx)
    assert await b.send_due() >= 1
    held.slot.set()
    await first
    assert len(idle.sim.sent_payouts(str(tx))) == 1  # requested once
    assert (await idle.settled(tx))["status"] == "completed"
