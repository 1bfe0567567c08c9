"""Outside attack on C2B validation: a deposit the ledger will never credit was still accepted.

A person (or a company paying on their behalf from a bank app) sends KES 1,000,000 to the paybill with a
valid, awaited reference. Validation answered "Accepted", so M-Pesa took the money, and the confirmation then
found it `too_large` (above the 999,999 a transaction can hold): nothing credited, the money held by the
business until a person refunds it. Validation exists to bounce such a payment back to the payer at once.
Real HTTP (our routes, the Daraja simulator), real PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from ledger.invariants import check_invariants
from tests.mpesa.conftest import Harness

PAYBILL = "600000"


async def test_a_deposit_too_large_to_credit_is_bounced_by_validation(harness: Harness) -> None:
    user = await harness.user("0.00", plan="basic")
    tx, ref = await harness.expect_deposit(user, "200000")
    harness.sim.c2b_validation = True
    payment = await harness.sim.c2b_pay(PAYBILL, Decimal("1000000"), ref)
    # Bounced: the payer keeps the money; nothing reaches a paybill where only a person could undo it.
    assert payment.validated == "C2B00013" and not payment.confirmed
    stuck = await harness.pool.fetchval(
        "SELECT count(*) FROM c2b_deposits WHERE account_reference = $1 AND outcome <> 'credited'", ref
    )
    assert stuck == 0
    # The reference still awaits the real deposit, which credits as usual.
    await harness.sim.c2b_pay(PAYBILL, Decimal("200000"), ref)
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    assert await harness.wallet(user) == Decimal("200000") - row["fee"]
    assert await check_invariants(harness.pool, [user]) == []


async def test_the_largest_creditable_deposit_is_accepted_and_credited(harness: Harness) -> None:
    user = await harness.user("0.00", plan="basic")
    tx, ref = await harness.expect_deposit(user, "1000")
    harness.sim.c2b_validation = True
    payment = await harness.sim.c2b_pay(PAYBILL, Decimal("999999"), ref)
    assert payment.validated == "0" and payment.confirmed
    row = await harness.settled(tx)
    assert row["status"] == "completed" and row["amount"] == Decimal("999999")
    assert await harness.wallet(user) == Decimal("999999") - row["fee"]
    assert await check_invariants(harness.pool, [user]) == []
