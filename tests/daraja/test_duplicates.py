"""Finding 2: a reused OriginatorConversationID answers HTTP 500 `500.002.1001`; that is "already sent",
read by its errorCode before its status, never a transient error retried until the payout is parked."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from daraja_sim import Behaviour, Simulator
from ledger.daraja.client import DarajaClient, DarajaDuplicate
from tests.mpesa.conftest import Harness
from tests.mpesa.test_payouts import quick_retries

COMMON: dict[str, Any] = {"result_url": "https://e.test/r", "timeout_url": "https://e.test/t", "remarks": "r"}


async def test_a_reused_originator_id_is_a_duplicate_by_its_error_code(
    sim: Simulator, client: DarajaClient
) -> None:
    await client.b2c(originator_conversation_id="dup-1", amount=Decimal("10"), phone="0712345678", **COMMON)
    with pytest.raises(DarajaDuplicate) as caught:
        await client.b2c(
            originator_conversation_id="dup-1", amount=Decimal("10"), phone="0712345678", **COMMON
        )
    assert caught.value.status == 500 and caught.value.error_code == "500.002.1001"
    assert len(sim.payouts) == 1


async def test_a_resend_after_a_lost_answer_is_read_as_already_sent(harness: Harness) -> None:
    """Before: the 500 was retried ten times and the payout parked as dead, paid but unsettled."""
    quick_retries(harness, backoff_base=0.05, backoff_cap=0.1)
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(lose_response=True, callback="none"), amount=1600, times=1)
    harness.sim.add_rule(Behaviour(callback="none"), amount=1600)
    tx = await harness.confirmed(user, "send_phone", "1600", phone="0712345678")

    async def sent() -> bool:
        box = await harness.pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)
        return box["status"] in ("sent", "settled")

    await harness.wait_for(sent)
    box = await harness.pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)
    assert box["attempts"] == 2 and "already sent" in box["last_error"]
    row = await harness.settled(tx)  # the status query settles it
    assert row["status"] == "completed"
    assert len(harness.sim.sent_payouts(str(tx))) == 2 and len(harness.sim.payouts_for(str(tx))) == 1
