"""Outside attack (a race with an ordinary Daraja hiccup): a second STK push for a top-up, which the customer
paid, was forgotten for good when its one STK query met any HTTP 400.

Daraja answers `400.002.02` for an unknown CheckoutRequestID, but with the same code for an STK password or
timestamp it refuses (a passkey being rotated, a clock drifting out of tolerance). The alternate push was
marked `unknown_checkout` on the first such answer and never asked about again: the customer paid, the
top-up ended failed, the wallet was never credited, and no log line asked a person to look. Now only an
answer that names the CheckoutRequestID as unknown settles an alternate as unknown; any other refusal leaves
it to be queried again. Real HTTP (our routes, the Daraja simulator), real PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

from daraja_sim import Behaviour
from ledger.daraja import client as api
from ledger.invariants import check_invariants
from tests.mpesa.conftest import Harness
from tests.serving import a_round_passes


async def test_a_paid_second_push_survives_a_refused_stk_query(harness: Harness) -> None:
    user = await harness.user("0.00")
    # The top-up's own push: the customer does not pay it, and its callback never comes.
    unpaid = Behaviour(outcome="fail", result_code=1032, callback="none")
    harness.sim.add_rule(unpaid, path=api.STK_PUSH_PATH, amount=900, times=1)
    async with harness.http.post(
        f"{harness.base_url}/v1/topups",
        json={"amount": 900},
        headers={"Authorization": f"Bearer {harness.token(user)}"},
    ) as resp:
        assert resp.status == 201
        topup_id = uuid.UUID((await resp.json())["topup_id"])
    phone: str = await harness.pool.fetchval("SELECT phone_number FROM profiles WHERE id = $1", user)
    reference: str = await harness.pool.fetchval(
        "SELECT account_reference FROM mpesa_transactions WHERE id = $1", topup_id
    )
    # A second push for the same top-up (as an auto top-up retry sends): the customer pays this one; its
    # callback (naming the top-up) comes a moment later.
    harness.sim.add_rule(Behaviour(delay=0.5), path=api.STK_PUSH_PATH, amount=900, times=1)
    assert harness.service.client is not None
    second = await harness.service.client.stk_push(
        amount=Decimal("900"),
        phone=phone,
        callback_url=f"{harness.callback_base}/stk/{topup_id}",
        account_reference=reference,
        description="Wallet top-up",
    )
    # Meanwhile Daraja refuses our STK queries' password (a passkey being rotated) for a few seconds.
    passkey = harness.sim.passkey
    harness.sim.passkey = "rotating-" + passkey
    try:

        async def asked_again() -> bool:  # a refused query, and the push asked about again after it
            return bool(
                await harness.pool.fetchval(
                    "SELECT queries > 1 FROM mpesa_stk_alternates WHERE checkout_request_id = $1",
                    second.CheckoutRequestID,
                )
            )

        await harness.wait_for(asked_again, limit=30)
    finally:
        harness.sim.passkey = passkey
    assert harness.sim.stk[second.CheckoutRequestID].success

    # The customer paid 900 once: the wallet shows it, once.
    async def credited() -> bool:
        return await harness.wallet(user) == Decimal("900.00")

    await harness.wait_for(credited, limit=15)
    row = await harness.pool.fetchrow("SELECT status FROM mpesa_transactions WHERE id = $1", topup_id)
    assert row["status"] == "completed"
    await a_round_passes(harness.pool)  # a whole round of the background loop after it credits nothing more
    assert await harness.wallet(user) == Decimal("900.00")
    assert await check_invariants(harness.pool, [user]) == []
