"""Adversarial review of the M-Pesa money path: lost STK answers, poison callbacks, out-of-order verdicts.

Each test goes over real HTTP (our routes, the Daraja simulator) on the run's real PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from daraja_sim import Behaviour
from ledger.daraja import client as api
from tests.mpesa.conftest import Harness


async def _phone(h: Harness, user: uuid.UUID) -> str:
    phone: str = await h.pool.fetchval("SELECT phone_number FROM profiles WHERE id = $1", user)
    return phone


def _paid_stk(h: Harness, phone: str) -> Decimal:
    """What the simulated customer really paid through STK pushes (successful prompts)."""
    return sum((Decimal(s.amount) for s in h.sim.stk.values() if s.phone == phone and s.success), Decimal(0))


def _stk_body(checkout: str, code: Any, amount: Any = None, receipt: str | None = None) -> dict[str, Any]:
    cb: dict[str, Any] = {
        "MerchantRequestID": "m-1",
        "CheckoutRequestID": checkout,
        "ResultCode": code,
        "ResultDesc": "test",
    }
    if amount is not None or receipt is not None:
        items: list[dict[str, Any]] = [{"Name": "Amount", "Value": amount}]
        if receipt is not None:
            items.append({"Name": "MpesaReceiptNumber", "Value": receipt})
        cb["CallbackMetadata"] = {"Item": items}
    return {"Body": {"stkCallback": cb}}


async def test_stk_push_whose_answer_was_lost_is_still_credited(harness: Harness) -> None:
    """Daraja took the push (the prompt reached the phone, the customer paid) but its answer was lost:
    the customer's money must still reach the wallet, once."""
    user = await harness.user("0.00")
    harness.sim.add_rule(Behaviour(lose_response=True, delay=0.1), path=api.STK_PUSH_PATH, amount=1234)
    status, body = await harness.topup(user, 1234)
    assert status == 502, body
    await harness.sim.idle()
    paid = _paid_stk(harness, await _phone(harness, user))
    assert paid == Decimal("1234")

    async def credited() -> bool:
        return await harness.wallet(user) == paid

    await harness.wait_for(credited, limit=5)
    row = await harness.pool.fetchrow("SELECT * FROM mpesa_transactions WHERE user_id = $1", user)
    assert row["status"] == "completed" and row["checkout_request_id"] in harness.sim.stk


async def test_auto_topup_with_a_lost_push_answer_prompts_once_and_credits_what_was_paid(
    harness: Harness,
) -> None:
    user = await harness.user(
        "1000.00",
        mpesa_auto_topup=True,
        mpesa_auto_topup_threshold=Decimal("500.00"),
        mpesa_auto_topup_amount=Decimal("1777.00"),
    )
    harness.sim.add_rule(Behaviour(lose_response=True), path=api.STK_PUSH_PATH, amount=1777, times=1)
    tx = await harness.confirmed(user, "send_phone", "600", phone="0712345678")
    await harness.settled(tx)
    phone = await _phone(harness, user)

    async def pushed() -> bool:
        return _paid_stk(harness, phone) > 0

    await harness.wait_for(pushed)
    await harness.sim.idle()

    async def completed() -> bool:
        n = await harness.pool.fetchval(
            "SELECT count(*) FROM mpesa_transactions WHERE user_id = $1 AND status = 'completed'", user
        )
        return bool(n)

    await harness.wait_for(completed, limit=8)
    await harness.sim.idle()
    fee = (await harness.tx(tx))["fee"]
    paid = _paid_stk(harness, phone)
    # Every shilling the customer paid is in the wallet (and the customer was prompted once).
    assert await harness.wallet(user) == Decimal("1000.00") - 600 - fee + paid
    assert paid == Decimal("1777")


@pytest.mark.parametrize(
    "amount", ["NaN", "sNaN", "Infinity", "1e20", "100.001", "-100", "0", "abc", True, None]
)
async def test_stk_callback_with_an_unreadable_amount_is_refused_not_a_500(
    harness: Harness, amount: Any
) -> None:
    user = await harness.user("0.00")
    harness.sim.add_rule(Behaviour(callback="none"), path=api.STK_PUSH_PATH, amount=100)
    status, body = await harness.topup(user, 100)
    assert status == 201
    checkout = body["checkout_request_id"]
    status, answer = await harness.post_callback("stk", _stk_body(checkout, 0, amount, "SAAAAAAAA1"))
    assert status == 200 and answer["ResultCode"] in (0, 1), answer
    # Nothing was credited for a callback that does not say how much was paid.
    assert await harness.wallet(user) == Decimal("0.00")
    # And the recorded callback does not jam the re-application of other recorded callbacks.
    await harness.service.callbacks.apply_pending(min_age=0)


async def test_callback_bodies_postgres_cannot_store_are_4xx_not_500(harness: Harness) -> None:
    url = f"{harness.callback_base}/payout/result"
    for raw in (b'{"Result": {"ResultCode": NaN}}', b'{"Result": {"ResultDesc": "a\\u0000b"}}'):
        async with harness.http.post(url, data=raw, headers={"Content-Type": "application/json"}) as resp:
            assert resp.status < 500, (raw, resp.status, await resp.text())


@pytest.mark.parametrize("amount", ["sNaN", "NaN", "abc"])
async def test_payout_result_with_an_unreadable_amount_is_refused_not_a_500(
    harness: Harness, amount: str
) -> None:
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback="none"), amount=901)
    tx = await harness.confirmed(user, "send_phone", "901", phone="0712345678")
    forged = {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "ok",
            "OriginatorConversationID": str(tx),
            "ConversationID": "AG_x",
            "TransactionID": "SCCCCCCCC3",
            "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": amount}]},
        }
    }
    status, answer = await harness.post_callback("payout/result", forged)
    assert status == 200 and answer["ResultCode"] == 1, answer
    assert (await harness.tx(tx))["status"] == "processing"
    # The truth still arrives by the status query.
    assert (await harness.settled(tx, limit=15))["status"] == "completed"
