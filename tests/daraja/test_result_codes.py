"""Finding 4: result codes 15 (duplicate detected) and 17 (internal failure) do not say whether the money
moved; only a status query settles such a payout. And both of the STK query's "still processing" forms."""

from __future__ import annotations

from decimal import Decimal

import pytest

from daraja_sim import Behaviour
from tests.mpesa.conftest import Harness


@pytest.mark.parametrize(("type_", "fields"), [
    ("send_phone", {"phone": "0712345678"}),
    ("paybill", {"paybill": "888880", "account": "X17"}),
])  # fmt: skip
@pytest.mark.parametrize("code", [15, 17])
async def test_a_paid_payout_reported_15_or_17_is_completed_never_refunded(
    harness: Harness, type_: str, fields: dict[str, str], code: int
) -> None:
    """Before: the callback's code refunded a payout M-Pesa had paid."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback_code=code), amount=1700)
    tx = await harness.confirmed(user, type_, "1700", **fields)
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    outcomes = [r["outcome"] for r in await harness.callbacks(tx)]
    assert "inconclusive" in outcomes
    assert await harness.wallet(user) == Decimal("5000.00") - 1700 - row["fee"]


async def test_an_unpaid_payout_reported_15_is_refunded_once_by_the_status_query(harness: Harness) -> None:
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(outcome="fail", result_code=1, callback_code=15), amount=1800)
    tx = await harness.confirmed(user, "send_phone", "1800", phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "failed"

    async def both_recorded() -> bool:
        kinds = [(r["kind"], r["outcome"]) for r in await harness.callbacks(tx)]
        return ("payout_result", "inconclusive") in kinds and ("status_result", "failed") in kinds

    await harness.wait_for(both_recorded)  # the callback row is labelled just after the refund commits
    assert await harness.wallet(user) == Decimal("5000.00")


@pytest.mark.parametrize("form", ["http_500", "result_4999"])
async def test_a_top_up_still_processing_in_either_form_is_credited_once_when_paid(
    harness: Harness, form: str
) -> None:
    harness.sim.stk_pending_form = form  # type: ignore[assignment]
    harness.sim.add_rule(Behaviour(callback="none", delay=2.5), amount=450)
    user = await harness.user("0.00")
    async with harness.http.post(
        f"{harness.base_url}/v1/topups",
        json={"amount": 450},
        headers={"Authorization": f"Bearer {harness.token(user)}"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        checkout = (await resp.json())["checkout_request_id"]

    async def credited() -> bool:
        return await harness.wallet(user) == Decimal("450.00")

    await harness.wait_for(credited, limit=15)
    assert harness.sim.stk[checkout].success
    status = await harness.pool.fetchval(
        "SELECT status FROM mpesa_transactions WHERE checkout_request_id = $1", checkout
    )
    assert status == "completed"
