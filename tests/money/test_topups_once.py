"""Exactly one credit per top-up (issue 7, findings 2 and 3, and the concurrent duplicate callbacks of 5),
over real HTTP: our callback routes and the Daraja simulator, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from daraja_sim import Behaviour
from ledger.daraja import client as api
from tests.mpesa.conftest import Harness


def _success(checkout: str, amount: Any, receipt: str) -> dict[str, Any]:
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": "m-1",
                "CheckoutRequestID": checkout,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {
                    "Item": [
                        {"Name": "Amount", "Value": amount},
                        {"Name": "MpesaReceiptNumber", "Value": receipt},
                        {"Name": "PhoneNumber", "Value": 254708374149},
                    ]
                },
            }
        }
    }


async def test_success_callbacks_with_fresh_checkout_ids_credit_a_topup_once(harness: Harness) -> None:
    """Finding 2: five success callbacks on /stk/{topup_id}, each with a fresh CheckoutRequestID (the
    top-up id is in the user's own /v1/topups answer), credited the wallet five times."""
    user = await harness.user("0.00")
    status, body = await harness.topup(user, 400)
    assert status == 201

    async def credited() -> bool:
        return await harness.wallet(user) == Decimal("400.00")

    await harness.wait_for(credited)
    url = f"{harness.callback_base}/stk/{body['topup_id']}"
    forged = [_success(f"ws_CO_{uuid.uuid4().hex}", 400, f"FAKE{i}") for i in range(5)]
    answers = []
    for payload in forged:
        async with harness.http.post(url, json=payload) as resp:
            answers.append((resp.status, await resp.json()))
    assert all(status == 200 for status, _ in answers)

    async def states() -> list[str]:
        rows = await harness.pool.fetch(
            "SELECT status FROM mpesa_stk_alternates WHERE topup_id = $1", uuid.UUID(body["topup_id"])
        )
        return sorted(r["status"] for r in rows)

    async def all_queried() -> bool:  # the STK queries of those pushes: M-Pesa knows none of them
        return len(rows := await states()) == 5 and "to_query" not in rows

    await harness.wait_for(all_queried, limit=30)
    assert await states() == ["unknown_checkout"] * 5
    assert await harness.wallet(user) == Decimal("400.00")


async def test_concurrent_duplicate_callbacks_are_acknowledged_and_credit_once(harness: Harness) -> None:
    """Finding 5: concurrent duplicate STK callbacks answered 500 (an uncaught duplicate)."""
    user = await harness.user("0.00")
    harness.sim.add_rule(Behaviour(callback="none"), path=api.STK_PUSH_PATH, amount=650)
    status, body = await harness.topup(user, 650)
    assert status == 201
    url = f"{harness.callback_base}/stk/{body['topup_id']}"
    payload = _success(body["checkout_request_id"], 650, "SAME000001")
    other = _success(f"ws_CO_{uuid.uuid4().hex}", 650, "OTHER00001")

    async def post(p: dict[str, Any]) -> int:
        async with harness.http.post(url, json=p) as resp:
            assert (await resp.json())["ResultCode"] in (0, 1)
            return resp.status

    statuses = await asyncio.gather(*(post(payload) for _ in range(8)), *(post(other) for _ in range(8)))
    assert set(statuses) == {200}, statuses
    assert await harness.wallet(user) == Decimal("650.00")


async def test_a_push_whose_answer_and_callback_were_lost_is_credited_by_pull_transactions(
    idle: Harness,
) -> None:
    """Finding 3: the push's answer was lost and no callback came; the top-up was marked failed with no
    checkout id, so nothing could ever query it, though the person paid. The test runs the reconciler's
    rounds itself (`idle`): the background loop's own round could otherwise credit it first."""
    harness = idle
    user = await harness.user("0.00")
    harness.sim.add_rule(Behaviour(lose_response=True, callback="none"), path=api.STK_PUSH_PATH, amount=1357)
    status, body = await harness.topup(user, 1357)
    assert status == 502 and "credited" in body["error"]["message"]
    row = await harness.pool.fetchrow("SELECT * FROM mpesa_transactions WHERE user_id = $1", user)
    assert row["status"] == "pending" and row["checkout_request_id"] is None
    assert row["account_reference"] and row["push_unknown_since"] is not None
    [paid] = [s for s in harness.sim.stk.values() if s.account_reference == row["account_reference"]]
    assert paid.success  # the person paid
    await harness.pool.execute(
        "UPDATE mpesa_transactions SET push_unknown_since = now() - interval '1 hour' WHERE id = $1",
        row["id"],
    )
    assert harness.service.c2b is not None
    assert await harness.service.c2b.reconciler.run_once(now=0, force=True) == 1
    assert await harness.service.c2b.reconciler.run_once(now=0, force=True) == 0  # asked again: nothing more
    done = await harness.pool.fetchrow("SELECT * FROM mpesa_transactions WHERE id = $1", row["id"])
    assert done["status"] == "completed" and done["mpesa_receipt_number"] == paid.receipt
    assert await harness.wallet(user) == Decimal("1357.00")


async def test_topups_are_rate_limited_per_user_with_a_json_429(harness: Harness) -> None:
    user = await harness.user("0.00")
    other = await harness.user("0.00")
    harness.sim.add_rule(Behaviour(callback="none"), path=api.STK_PUSH_PATH, amount=10)
    limit = harness.settings.topup_rate_limit
    statuses = [(await harness.topup(user, 10))[0] for _ in range(limit)]
    assert statuses == [201] * limit
    status, body = await harness.topup(user, 10)
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert (await harness.topup(other, 10))[0] == 201  # per user
    pushes = await harness.pool.fetchval("SELECT count(*) FROM mpesa_transactions WHERE user_id = $1", user)
    assert pushes == limit


async def test_a_burst_of_topup_requests_cannot_race_past_the_limit(harness: Harness) -> None:
    user = await harness.user("0.00")
    harness.sim.add_rule(Behaviour(callback="none"), path=api.STK_PUSH_PATH, amount=11)
    limit = harness.settings.topup_rate_limit
    results = await asyncio.gather(*(harness.topup(user, 11) for _ in range(limit * 4)))
    statuses = [status for status, _ in results]
    assert set(statuses) <= {201, 429} and 1 <= statuses.count(201) <= limit, statuses
    phone = await harness.pool.fetchval("SELECT phone_number FROM profiles WHERE id = $1", user)
    pushes = [p for p in harness.sim.requests_to(api.STK_PUSH_PATH) if p.body["PhoneNumber"] == phone]
    assert len(pushes) == statuses.count(201)
