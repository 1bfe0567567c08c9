"""Issue 18: a top-up that M-Pesa failed is never credited by a later success callback on its word; an STK
query decides (payouts already treat opposite verdicts as a conflict).

Before: `ledger_credit_stk` credited a failed top-up on any later success callback, so a replayed or forged
success for a cancelled push created money no one paid in.
"""

from __future__ import annotations

from decimal import Decimal

from daraja_sim import Behaviour
from ledger.daraja import client as api
from tests.mpesa.conftest import Harness


def success_body(checkout: str, merchant: str, amount: int, receipt: str) -> dict[str, object]:
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": merchant,
                "CheckoutRequestID": checkout,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": float(amount)},
                        {"Name": "MpesaReceiptNumber", "Value": receipt},
                        {"Name": "TransactionDate", "Value": 20261207120000},
                        {"Name": "PhoneNumber", "Value": 254712345678},
                    ]
                },
            }
        }
    }


async def status_of(harness: Harness, checkout: str) -> str:
    status: str = await harness.pool.fetchval(
        "SELECT status FROM mpesa_transactions WHERE checkout_request_id = $1", checkout
    )
    return status


async def test_a_forged_success_after_a_cancelled_push_credits_nothing(harness: Harness) -> None:
    user = await harness.user("100.00")
    harness.sim.add_rule(Behaviour(outcome="fail"), path=api.STK_PUSH_PATH, amount=700)
    status, body = await harness.topup(user, 700)
    assert status == 201
    checkout = body["checkout_request_id"]
    await harness.wait_for(lambda: _is(harness, checkout, "failed"))
    stk = harness.sim.stk[checkout]
    code, _ = await harness.post_callback(
        f"stk/{body['topup_id']}", success_body(checkout, stk.merchant_request_id, 700, "SFORGED001")
    )
    assert code == 200
    # The STK query (M-Pesa: cancelled) decides: still failed, nothing credited.
    await harness.wait_for(lambda: _queried(harness, checkout), limit=20)
    assert await status_of(harness, checkout) == "failed"
    assert await harness.wallet(user) == Decimal("100.00")


async def test_a_real_success_after_a_failure_verdict_is_credited_once_the_query_says_so(
    harness: Harness,
) -> None:
    """The failure callback was the wrong one (M-Pesa's own query says paid): credited, once."""
    user = await harness.user("100.00")
    harness.sim.add_rule(
        Behaviour(callback_code=1032, result_desc="Request cancelled by user"),
        path=api.STK_PUSH_PATH,
        amount=800,
    )
    status, body = await harness.topup(user, 800)
    assert status == 201
    checkout = body["checkout_request_id"]
    await harness.wait_for(lambda: _is(harness, checkout, "failed"))
    stk = harness.sim.stk[checkout]
    assert stk.success  # the money moved; only the callback said otherwise
    success = success_body(checkout, stk.merchant_request_id, 800, stk.receipt)
    for _ in range(2):  # replayed too
        assert (await harness.post_callback(f"stk/{body['topup_id']}", success))[0] == 200
    await harness.wait_for(lambda: _is(harness, checkout, "completed"), limit=20)
    assert await harness.wallet(user) == Decimal("900.00")


async def _is(harness: Harness, checkout: str, status: str) -> bool:
    return await status_of(harness, checkout) == status


async def _queried(harness: Harness, checkout: str) -> bool:
    row = await harness.pool.fetchval(
        "SELECT status FROM mpesa_stk_alternates WHERE checkout_request_id = $1", checkout
    )
    return row == "unpaid"
