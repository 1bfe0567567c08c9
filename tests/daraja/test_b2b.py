"""Finding 3: B2B carries no OriginatorConversationID of ours. Daraja assigns the ids; the payout is matched
and queried by the ConversationID of the answer (recorded first), a result that overtakes the answer is kept
and applied when it lands, and a B2B request that may have reached M-Pesa is never sent again."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from daraja_sim import Behaviour
from ledger.daraja import client as api
from ledger.daraja.client import DarajaClient
from ledger.payouts import PayoutConfig, PayoutWorker
from tests.mpesa.conftest import Harness, sim_config


async def outbox(h: Harness, tx: uuid.UUID) -> Any:
    return await h.pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)


async def test_b2b_is_sent_without_our_id_and_queried_by_the_id_daraja_gave(harness: Harness) -> None:
    """Before: the status query asked by our id, M-Pesa did not know it, and the payout stayed processing.
    Then (issue 20, 4): it asked only by ConversationID, which the TransactionStatus page does not document;
    the simulator, finding payouts only by the documented OriginatorConversationID, never answered it."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback="none"), amount=1100)  # the result never comes
    tx = await harness.confirmed(user, "paybill", "1100", paybill="888880", account="ACC1")
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    [paid] = harness.sim.payouts_for(str(tx))
    [request] = harness.sim.sent_payouts(str(tx))
    assert "OriginatorConversationID" not in request.body
    assert paid.originator_conversation_id != str(tx)  # Daraja's own id
    assert (await outbox(harness, tx))["conversation_id"] == paid.conversation_id
    # The questions about this payout (the worker also asks about payouts other tests on this database left
    # processing): by any id it could be known by, ours included; the first must be Daraja's own.
    ours = {str(tx), paid.originator_conversation_id, paid.conversation_id}
    queries = [
        q for q in harness.sim.requests_to(api.STATUS_PATH) if q.body.get("OriginalConversationID") in ours
    ]
    assert queries[0].body["OriginalConversationID"] == paid.originator_conversation_id
    assert row["mpesa_transaction_id"] == paid.receipt


async def test_a_b2b_request_whose_answer_was_lost_is_never_sent_again(harness: Harness) -> None:
    """Before: a lost answer was retried, and M-Pesa (which cannot see a B2B duplicate) paid twice."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(lose_response=True), amount=1300, times=1)
    tx = await harness.confirmed(user, "buy_goods_till", "1300", till="832109")
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    assert len(harness.sim.sent_payouts(str(tx))) == 1
    [paid] = harness.sim.payouts_for(str(tx))
    # The result, bound to the payout by its URL, brought the ConversationID the lost answer had.
    assert (await outbox(harness, tx))["conversation_id"] == paid.conversation_id
    assert await harness.wallet(user) == Decimal("5000.00") - 1300 - row["fee"]


async def test_a_b2b_result_before_its_answer_is_kept_and_applied_when_the_answer_lands(
    harness: Harness,
) -> None:
    """Before: the early result was dropped as unknown, and the payout stayed processing."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback="out_of_order", delay=0.3), amount=1400)
    tx = await harness.confirmed(user, "mpesa_to_bank", "1400", bank_code="68", account="0123456789")
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    await harness.sim.idle()
    box = await outbox(harness, tx)
    query = (
        "SELECT * FROM mpesa_callbacks WHERE payout_id = $1 AND kind = 'payout_result' ORDER BY id LIMIT 1"
    )

    async def labelled() -> bool:
        return bool((await harness.pool.fetchrow(query, tx))["outcome"] == "completed")

    await harness.wait_for(labelled)  # labelled just after the settlement commits
    first = await harness.pool.fetchrow(query, tx)
    assert first["received_at"] < box["sent_at"]  # it arrived before the answer was recorded
    assert len(harness.sim.payouts_for(str(tx))) == 1


async def test_a_b2b_payout_claimed_again_after_a_crash_is_not_resent(harness: Harness) -> None:
    """A worker sent the B2B request and died before recording anything: the next worker must not resend."""
    await harness.service.stop()  # no background worker: this test plays both workers
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(delay=0.5), amount=1500)
    tx = await harness.confirmed(user, "paybill", "1500", paybill="888880", account="CRASH1")
    urls = harness.service.urls
    async with DarajaClient(sim_config(harness.sim)) as dead_worker:
        await harness.pool.execute(
            "UPDATE payout_outbox SET b2b_sent_at = now(), attempts = 1 WHERE transaction_id = $1", tx
        )
        await dead_worker.b2b(
            command="BusinessPayBill", amount=Decimal("1500"), party_b="888880", account_reference="CRASH1",
            result_url=urls.payout_result_for(tx), timeout_url=urls.payout_timeout_for(tx), remarks="r",
        )  # fmt: skip
    async with DarajaClient(sim_config(harness.sim)) as c:
        worker = PayoutWorker(harness.pool, c, PayoutConfig(urls=urls), ledger=harness.ledger)
        assert await worker.send_due() == 1
    assert len(harness.sim.sent_payouts(str(tx))) == 1
    assert (await outbox(harness, tx))["status"] == "dead"
    row = await harness.settled(tx)  # the result callback settles it
    assert row["status"] == "completed"


async def post_result(h: Harness, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with h.http.post(url, json=body) as resp:
        return resp.status, await resp.json()


def b2b_result(conversation: str, code: int = 0, amount: int = 1000) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ResultType": 0, "ResultCode": code, "ResultDesc": "forged", "OriginatorConversationID": "1-2-1",
        "ConversationID": conversation, "TransactionID": "SFORGED01",
    }  # fmt: skip
    if code == 0:
        result["ResultParameters"] = {"ResultParameter": [{"Key": "Amount", "Value": amount}]}
    return {"Result": result}


async def test_forged_and_replayed_b2b_results_change_nothing(harness: Harness) -> None:
    user = await harness.user("9000.00")
    first = await harness.confirmed(user, "paybill", "1000", paybill="888880", account="A")
    assert (await harness.settled(first))["status"] == "completed"
    await harness.sim.idle()
    first_conversation = (await outbox(harness, first))["conversation_id"]
    harness.sim.add_rule(Behaviour(callback="none"), amount=2000)
    second = await harness.confirmed(user, "paybill", "2000", paybill="888880", account="B")

    async def answered() -> bool:
        return (await outbox(harness, second))["conversation_id"] is not None

    await harness.wait_for(answered)
    base = harness.callback_base
    # A failure for the second payout, forged with an invented ConversationID: refused.
    status, _ = await post_result(
        harness, f"{base}/payout/result/{second}", b2b_result("AG_forged", code=2001)
    )
    assert status == 200
    # The first payout's genuine ConversationID replayed against the second: refused.
    await post_result(harness, f"{base}/payout/result/{second}", b2b_result(first_conversation, code=2001))
    # A result with no URL binding naming the first payout's ConversationID again: already settled.
    await post_result(harness, f"{base}/payout/result", b2b_result(first_conversation))
    outcomes = [r["outcome"] for r in await harness.callbacks(second)]
    assert outcomes.count("conversation_mismatch") == 2
    # A payout id that is not ours, and a reference that is not an id at all.
    await post_result(harness, f"{base}/payout/result/{uuid.uuid4()}", b2b_result("AG_x"))
    async with harness.http.post(f"{base}/payout/result/not-a-uuid", json=b2b_result("AG_x")) as resp:
        assert resp.status == 404
    # Only M-Pesa's truth (the status query) settles the second payout: paid, never refunded.
    row = await harness.settled(second)
    assert row["status"] == "completed"
    assert (await harness.tx(first))["status"] == "completed"
    fees = (await harness.tx(first))["fee"] + row["fee"]
    assert await harness.wallet(user) == Decimal("9000.00") - 3000 - fees


async def test_a_b2c_result_with_another_payouts_conversation_id_is_refused(harness: Harness) -> None:
    user = await harness.user("9000.00")
    first = await harness.confirmed(user, "send_phone", "1000", phone="0712345678")
    assert (await harness.settled(first))["status"] == "completed"
    harness.sim.add_rule(Behaviour(callback="none"), amount=2100)
    second = await harness.confirmed(user, "send_phone", "2100", phone="0712345678")

    async def answered() -> bool:
        return (await outbox(harness, second))["conversation_id"] is not None

    await harness.wait_for(answered)
    await harness.sim.idle()
    first_conversation = (await outbox(harness, first))["conversation_id"]
    body = b2b_result(first_conversation, code=2001)
    body["Result"]["OriginatorConversationID"] = str(second)
    await post_result(harness, f"{harness.callback_base}/payout/result", body)
    assert "conversation_mismatch" in [r["outcome"] for r in await harness.callbacks(second)]
    assert (await harness.settled(second))["status"] == "completed"


async def test_a_b2c_payout_cannot_be_bound_by_a_result_url(harness: Harness) -> None:
    """Only B2B ResultURLs name their payout: a forged result posted to `/payout/result/<b2c id>` for a parked
    B2C payout must not lend it a ConversationID nor settle it."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback="none"), amount=1900)
    tx = await harness.confirmed(user, "send_phone", "1900", phone="0712345678")

    async def answered() -> bool:
        return (await outbox(harness, tx))["conversation_id"] is not None

    await harness.wait_for(answered)
    # The state a parked payout without a recorded answer is in.
    await harness.pool.execute(
        "UPDATE payout_outbox SET status = 'dead', conversation_id = NULL WHERE transaction_id = $1", tx
    )
    status, _ = await post_result(
        harness, f"{harness.callback_base}/payout/result/{tx}", b2b_result("AG_forged", code=2001)
    )
    assert status == 200
    assert (await outbox(harness, tx))["conversation_id"] is None
    row = await harness.settled(tx)  # the status query (by our id, for B2C) tells the truth
    assert row["status"] == "completed"


async def test_b2b_results_racing_their_answers_settle_each_payout_once(harness: Harness) -> None:
    """The result and the answer in a dead heat, many times over: each is applied once the other is in."""
    user = await harness.user("90000.00")
    harness.sim.add_rule(Behaviour(callback="out_of_order", delay=0.0))
    txs = [await harness.confirmed(user, "buy_goods_till", str(1000 + n), till="832109") for n in range(12)]
    rows = [await harness.settled(tx) for tx in txs]
    assert {r["status"] for r in rows} == {"completed"}
    await harness.sim.idle()
    for tx in txs:
        assert len(harness.sim.payouts_for(str(tx))) == 1

        async def labelled_once(tx: uuid.UUID = tx) -> bool:
            outcomes = [r["outcome"] for r in await harness.callbacks(tx) if r["kind"] == "payout_result"]
            return outcomes.count("completed") == 1 and set(outcomes) <= {"completed", "already_settled"}

        await harness.wait_for(labelled_once)


async def test_a_b2b_answer_without_conversation_id_is_parked_and_settled_by_its_result(
    harness: Harness,
) -> None:
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(blank_conversation_id=True, delay=0.5), amount=1250)
    tx = await harness.confirmed(user, "paybill", "1250", paybill="888880", account="BLANK")
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    [paid] = harness.sim.payouts_for(str(tx))
    box = await outbox(harness, tx)
    assert box["conversation_id"] == paid.conversation_id and len(harness.sim.sent_payouts(str(tx))) == 1
