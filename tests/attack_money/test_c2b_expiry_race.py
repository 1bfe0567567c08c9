"""Outside attack (a race of the 24-hour expiry with a missed confirmation): a person's bank transfer that
arrived before the deadline vanished without a trace when its confirmation was missed.

Daraja does not resend a missed C2B confirmation (our server was down, or the request was lost); the
deposit is then found only by Pull Transactions, which looked only at expected deposits still `awaiting`.
When the 24 hours ran out before the next pull (a server that comes back after an outage runs its sweeper and
its reconciler in either order), the deposit was expired first and never looked for: the money was in the
paybill, the app said "no deposit arrived", `c2b_deposits` held nothing and no log asked a person to look.
Now Pull Transactions keeps looking for an expired reference for the 48 hours it can see, and records what it
finds for a person (`reference_expired`). Real HTTP (our routes, the Daraja simulator), real PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from ledger.invariants import check_invariants
from tests.mpesa.conftest import Harness

PAYBILL = "600000"


async def test_a_deposit_whose_confirmation_was_missed_is_never_lost_to_the_expiry(harness: Harness) -> None:
    from voice_server.sweeper import sweep

    user = await harness.user("100.00")
    tx, ref = await harness.expect_deposit(user, "900")
    # The person pays on time, but the confirmation never reaches us.
    harness.sim.c2b_validation = False
    paid = await harness.sim.c2b_pay(PAYBILL, Decimal("900"), ref, deliver=False)
    assert not paid.confirmed
    # The deadline passes before the next Pull Transactions (an outage around it): the sweeper runs first.
    await harness.pool.execute(
        "UPDATE c2b_expected_deposits SET expires_at = now() - interval '1 second',"
        " created_at = now() - interval '24 hours' WHERE transaction_id = $1",
        tx,
    )
    assert (await sweep(harness.pool)).deposits_expired >= 1
    assert harness.service.c2b is not None
    await harness.service.c2b.reconciler.run_once(now=0, force=True)

    # The money that arrived is on record, for this person, for someone to credit or refund.
    deposit = await harness.pool.fetchrow("SELECT * FROM c2b_deposits WHERE trans_id = $1", paid.trans_id)
    assert deposit is not None, "the deposit that arrived is nowhere in the books"
    assert deposit["outcome"] == "reference_expired" and deposit["user_id"] == user
    assert deposit["amount"] == Decimal("900.00") and deposit["resolved_at"] is None
    # Nothing was credited by itself, and a second look records nothing twice.
    await harness.service.c2b.reconciler.run_once(now=0, force=True)
    count = await harness.pool.fetchval("SELECT count(*) FROM c2b_deposits WHERE account_reference = $1", ref)
    assert count == 1
    assert await harness.wallet(user) == Decimal("100.00")
    assert (await harness.tx(tx))["status"] == "failed"
    assert await check_invariants(harness.pool, [user]) == []
