"""Outside attack: result callbacks whose ResultCode is no verdict at all (null, blank, "0.0", "00", "-0", a
list, an object, a fraction). Before the fix each one was read as a failure: a payout that M-Pesa had paid
was refunded (the recipient had the money and the payer got it back), and a top-up the customer had paid
was marked failed and never STK-queried again. Now they are no verdict: the status or STK query settles the
payment by what really happened. Real HTTP (our routes, the Daraja simulator), real PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from daraja_sim import Behaviour
from ledger.daraja import client as api
from ledger.invariants import check_invariants
from tests.mpesa.conftest import Harness

NO_VERDICT: list[Any] = [None, "", " ", "0.0", "00", "+0", "-0", [0], {"code": 0}, 0.5]


async def _conversation(h: Harness, tx: uuid.UUID) -> str:
    async def sent() -> bool:
        return bool(
            await h.pool.fetchval(
                "SELECT conversation_id IS NOT NULL FROM payout_outbox WHERE transaction_id = $1", tx
            )
        )

    await h.wait_for(sent)
    conversation: str = await h.pool.fetchval(
        "SELECT conversation_id FROM payout_outbox WHERE transaction_id = $1", tx
    )
    return conversation


@pytest.mark.parametrize("code", NO_VERDICT)
async def test_a_result_with_no_verdict_never_refunds_a_paid_payout(harness: Harness, code: Any) -> None:
    user = await harness.user("5000.00")
    # M-Pesa pays the recipient, but its own result callback never comes.
    harness.sim.add_rule(Behaviour(callback="none"), amount=2500)
    tx = await harness.confirmed(user, "send_phone", "2500", phone="0712345678")
    conversation = await _conversation(harness, tx)
    body = {
        "Result": {
            "ResultType": 0,
            "ResultCode": code,
            "ResultDesc": "garbled",
            "OriginatorConversationID": str(tx),
            "ConversationID": conversation,
            "TransactionID": "RAB1234567",
        }
    }
    status, answer = await harness.post_callback("payout/result", body)
    assert status == 200 and answer["ResultCode"] == 0, answer
    # The status query tells the truth: paid. The person sees the payment done and the money gone once.
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    assert await harness.wallet(user) == Decimal("5000.00") - Decimal("2500") - row["fee"]
    refunds = await harness.pool.fetchval(
        "SELECT count(*) FROM balance_history WHERE transaction_id = $1 AND change_amount > 0", tx
    )
    assert refunds == 0
    assert await check_invariants(harness.pool, [user]) == []


@pytest.mark.parametrize("code", NO_VERDICT)
async def test_an_stk_callback_with_no_verdict_never_fails_a_paid_topup(harness: Harness, code: Any) -> None:
    user = await harness.user("0.00")
    # The customer pays the prompt; M-Pesa's own callback never comes.
    harness.sim.add_rule(Behaviour(callback="none"), path=api.STK_PUSH_PATH, amount=700)
    async with harness.http.post(
        f"{harness.base_url}/v1/topups",
        json={"amount": 700},
        headers={"Authorization": f"Bearer {harness.token(user)}"},
    ) as resp:
        assert resp.status == 201
        checkout = (await resp.json())["checkout_request_id"]
    body = {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "m-1",
                "CheckoutRequestID": checkout,
                "ResultCode": code,
                "ResultDesc": "garbled",
            }
        }
    }
    status, answer = await harness.post_callback("stk", body)
    assert status == 200, answer

    async def credited() -> bool:
        return await harness.wallet(user) == Decimal("700.00")

    await harness.wait_for(credited)
    row = await harness.pool.fetchrow("SELECT status FROM mpesa_transactions WHERE user_id = $1", user)
    assert row["status"] == "completed"
    assert await check_invariants(harness.pool, [user]) == []
