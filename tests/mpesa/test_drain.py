"""The payout worker drains a backlog: one round sends every due payout (up to its bound), several workers
draining at once send each payout once, and every request waits for its slot of the pace. Real PostgreSQL,
the simulator over HTTP, the background loop stopped so the test runs the rounds; counted, never timed."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from daraja_sim import Simulator
from ledger.daraja import client as api
from ledger.pace import Pace
from ledger.payouts import PayoutWorker
from tests.mpesa.conftest import Harness, held_pace, lease_runs_out

PAYOUT_PATHS = {api.B2C_PATH, api.B2POCHI_PATH, api.B2B_PATH}


def worker(h: Harness) -> PayoutWorker:
    assert h.service.payouts is not None
    return h.service.payouts


async def backlog(h: Harness, count: int) -> list[uuid.UUID]:
    """`count` confirmed payouts, B2C and B2B in turn, all due now."""
    user = await h.user("1000000.00")
    txs = []
    for i in range(count):
        if i % 2:
            txs.append(await h.confirmed(user, "paybill", str(100 + i), paybill="888880", account=f"D{i}"))
        else:
            txs.append(await h.confirmed(user, "send_phone", str(100 + i), phone="0712345678"))
    return txs


def times_sent(sim: Simulator, txs: list[uuid.UUID]) -> list[int]:
    """How many payout requests the simulator received for each transaction (B2B: by its ResultURL)."""
    return [len(sim.sent_payouts(str(tx))) for tx in txs]


async def settled_once(h: Harness, txs: list[uuid.UUID]) -> None:
    """Each completed once: one payout at M-Pesa, one result applied, debit and fee and nothing more."""
    for tx in txs:
        assert (await h.settled(tx))["status"] == "completed"
        assert len(h.sim.payouts_for(str(tx))) == 1
    await h.sim.idle()
    rows = await h.pool.fetch(
        """SELECT t.id, count(b.*) AS moves,
                  (SELECT count(*) FROM mpesa_callbacks c
                   WHERE c.transaction_id = t.id AND c.outcome = 'completed') AS settlements
           FROM transactions t LEFT JOIN balance_history b ON b.transaction_id = t.id
           WHERE t.id = ANY($1::uuid[]) GROUP BY t.id""",
        txs,
    )
    assert sorted((r["moves"], r["settlements"]) for r in rows) == [(2, 1)] * len(txs)
    assert await h.invariants() == []


async def test_one_round_sends_a_backlog_of_several_claims(idle: Harness) -> None:
    payouts = worker(idle)
    txs = await backlog(idle, 3 * payouts.config.batch + 1)
    assert payouts.config.max_per_round > len(txs)
    assert await idle.service.run_once() is False  # drained within its bound: no round needed at once
    assert times_sent(idle.sim, txs) == [1] * len(txs)  # all of them went out in that one round
    await settled_once(idle, txs)


async def test_a_backlog_over_the_round_bound_is_finished_over_several_rounds(idle: Harness) -> None:
    payouts = worker(idle)
    payouts.config = dataclasses.replace(payouts.config, max_per_round=10)
    txs = await backlog(idle, 25)
    seen = 0
    rounds = 0
    while await idle.service.run_once():  # True: stopped at the bound, more may be due
        rounds += 1
        out = sum(1 for n in times_sent(idle.sim, txs) if n)
        assert out - seen <= 10  # never more than the bound in one round
        seen = out
        assert rounds < 10
    assert rounds >= 2  # 25 over a bound of 10: two full rounds at least, then a short one
    assert times_sent(idle.sim, txs) == [1] * len(txs)
    await settled_once(idle, txs)


async def test_two_workers_draining_one_backlog_send_each_payout_once(idle: Harness) -> None:
    config = worker(idle).config
    assert idle.service.client is not None
    two = [PayoutWorker(idle.pool, idle.service.client, config, ledger=idle.ledger) for _ in range(2)]
    txs = await backlog(idle, 4 * config.batch + 1)
    claimed = await asyncio.gather(*(w.send_due() for w in two))
    assert min(claimed) > 0  # both took part: they drained it side by side
    assert sum(claimed) >= len(txs)  # between them they claimed it all (and any other row due)
    assert times_sent(idle.sim, txs) == [1] * len(txs)
    await settled_once(idle, txs)


async def test_every_payout_request_waits_for_a_slot_of_the_pace(idle: Harness) -> None:
    """On a clock that never moves the pace hands out slots 1/N s apart (tests/mpesa/test_pace.py counts
    those); here, the slots it handed out are as many as the payout requests the simulator received."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    pace = Pace(5, clock=lambda: 0, sleep=sleep)
    assert idle.service.client is not None
    paced = PayoutWorker(idle.pool, idle.service.client, worker(idle).config, ledger=idle.ledger, pace=pace)
    txs = await backlog(idle, 2 * worker(idle).config.batch + 3)
    before = sum(1 for r in idle.sim.received if r.path in PAYOUT_PATHS)
    await paced.send_due()
    requests = sum(1 for r in idle.sim.received if r.path in PAYOUT_PATHS) - before
    assert requests >= len(txs)
    assert pace.free_at == requests * pace.interval  # one slot per request, none skipped, none spare
    assert max(slept) == pytest.approx((requests - 1) / 5)  # the last one waited for all the others
    assert times_sent(idle.sim, txs) == [1] * len(txs)
    await settled_once(idle, txs)


async def test_a_b2b_payout_whose_lease_ran_out_while_it_waited_is_sent_once(idle: Harness) -> None:
    """Worker A claims a B2B payout and waits for its slot; the lease runs out meanwhile (here: made to) and
    worker B claims and sends it. When A's slot comes, A finds the payout marked as going out and sends
    nothing: B2B carries no id of ours, so M-Pesa would pay both."""
    held = held_pace()  # the next slot is A's, and it waits for the test
    assert idle.service.client is not None
    config = worker(idle).config
    a = PayoutWorker(idle.pool, idle.service.client, config, ledger=idle.ledger, pace=held.pace)
    b = PayoutWorker(idle.pool, idle.service.client, config, ledger=idle.ledger)
    user = await idle.user("100000.00")
    tx = await idle.confirmed(user, "paybill", "700", paybill="888880", account="RACE1")

    first = asyncio.create_task(a.send_due())
    await asyncio.wait_for(held.waiting.wait(), 10)  # A has claimed it and waits for its slot
    assert await idle.pool.fetchval("SELECT attempts FROM payout_outbox WHERE transaction_id = $1", tx) == 1
    await lease_runs_out(idle, tx)
    assert await b.send_due() >= 1
    assert times_sent(idle.sim, [tx]) == [1]
    held.slot.set()
    await first
    assert times_sent(idle.sim, [tx]) == [1]  # A sent nothing
    await settled_once(idle, [tx])
