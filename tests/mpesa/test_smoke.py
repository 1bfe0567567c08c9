"""The simplest payment, checked as the sender and the receiver would: the person paid gets the amount on
their phone, once, and the sender's wallet pays the amount and the fee, with M-Pesa's receipt kept."""

from __future__ import annotations

from decimal import Decimal

from tests.mpesa.conftest import Harness


async def test_send_phone_completes(harness: Harness) -> None:
    user = await harness.user("10000.00")
    tx = await harness.confirmed(user, "send_phone", "100", phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "completed", row
    [payout] = harness.sim.payouts_for(str(tx))  # sent to M-Pesa once
    assert (payout.party_b, payout.amount, payout.success) == ("254712345678", 100, True)
    assert row["mpesa_transaction_id"] == payout.receipt != ""
    assert row["fee"] > 0
    assert await harness.wallet(user) == Decimal("10000.00") - 100 - row["fee"]
