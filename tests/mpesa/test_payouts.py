"""Payouts end to end: ledger confirm -> outbox -> worker -> simulator over HTTP -> callback over HTTP ->
settled exactly once, on real PostgreSQL, for each simulator behaviour. The harness checks the ledger
invariants after every test."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from decimal import Decimal

import pytest

from daraja_sim import Behaviour
from ledger.daraja import client as api
from ledger.payouts import PayoutWorker
from tests.mpesa.conftest import CALLBACK_SECRET, Harness


def _one_payout(h: Harness, tx: uuid.UUID) -> dict[str, object]:
    sent = h.sim.sent_payouts(str(tx))
    accepted = h.sim.payouts_for(str(tx))
    assert len(accepted) == 1, f"expected one accepted payout, got {len(accepted)} ({len(sent)} requests)"
    body = sent[0].body
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    ("type_", "fields", "path", "expect"),
    [
        ("send_phone", {"phone": "0712345678"}, api.B2C_PATH,
         {"CommandID": "BusinessPayment", "PartyB": "254712345678"}),
        ("buy_goods_pochi", {"phone": "0722000111"}, api.B2POCHI_PATH,
         {"CommandID": "BusinessPayToPochi", "PartyB": "254722000111"}),
        ("buy_goods_till", {"till": "832109"}, api.B2B_PATH,
         {"CommandID": "BusinessBuyGoods", "PartyB": "832109"}),
        ("paybill", {"paybill": "888880", "account": "ACC42"}, api.B2B_PATH,
         {"CommandID": "BusinessPayBill", "PartyB": "888880", "AccountReference": "ACC42"}),
        ("mpesa_to_bank", {"bank_code": "68", "account": "0123456789"}, api.B2B_PATH,
         {"CommandID": "BusinessPayBill", "PartyB": "247247", "AccountReference": "0123456789"}),
        ("withdraw", {"agent": "123456", "store": "1"}, api.B2C_PATH, {"CommandID": "BusinessPayment"}),
    ],
)  # fmt: skip
async def test_each_type_maps_to_its_daraja_request_and_completes(
    harness: Harness, type_: str, fields: dict[str, str], path: str, expect: dict[str, str]
) -> None:
    user = await harness.user("5000.00")
    tx = await harness.confirmed(user, type_, "1000", **fields)
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    body = _one_payout(harness, tx)
    [request] = harness.sim.sent_payouts(str(tx))
    assert request.path == path
    for key, value in expect.items():
        assert body[key] == value, key
    assert body["Amount"] == 1000
    if path == api.B2B_PATH:
        # Daraja assigns B2B ids: none of ours in the request, the transaction named by the URLs instead.
        assert "OriginatorConversationID" not in body
        assert body["ResultURL"] == f"{harness.callback_base}/payout/result/{tx}"
        assert body["QueueTimeOutURL"] == f"{harness.callback_base}/payout/timeout/{tx}"
    else:
        assert body["OriginatorConversationID"] == str(tx)
        assert body["ResultURL"] == f"{harness.callback_base}/payout/result"
        assert body["QueueTimeOutURL"] == f"{harness.callback_base}/payout/timeout"
    if type_ == "withdraw":
        phone = await harness.pool.fetchval("SELECT phone_number FROM profiles WHERE id = $1", user)
        assert body["PartyB"] == phone  # Daraja has no agent cash-out: to the user's own number
    [paid] = harness.sim.payouts_for(str(tx))
    receipt = paid.receipt
    assert row["mpesa_transaction_id"] == receipt and row["completed_at"] is not None
    assert await harness.wallet(user) == Decimal("5000.00") - 1000 - row["fee"]


async def test_failure_with_a_real_code_refunds_amount_and_fee(harness: Harness) -> None:
    user = await harness.user("3000.00")
    harness.sim.add_rule(Behaviour(outcome="fail", result_code=1), amount=777)
    tx = await harness.confirmed(user, "send_phone", "777", phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "failed" and "insufficient" in row["error_message"].lower()
    assert await harness.wallet(user) == Decimal("3000.00")
    reasons = [r["reason"] for r in await harness.pool.fetch(
        "SELECT reason FROM balance_history WHERE transaction_id = $1 ORDER BY seq", tx)]  # fmt: skip
    assert reasons == ["debit", "fee", "refund", "fee_refund"]


async def test_wrong_initiator_password_fails_with_2001(harness: Harness) -> None:
    user = await harness.user("3000.00")
    harness.sim.initiator_password = "not-what-the-client-encrypts"
    tx = await harness.confirmed(user, "send_phone", "500", phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "failed" and "2001" in row["error_message"]
    assert await harness.wallet(user) == Decimal("3000.00")


async def test_timeout_without_callback_is_reconciled_by_a_status_query(harness: Harness) -> None:
    user = await harness.user()
    harness.sim.add_rule(Behaviour(callback="none"), amount=1234)
    tx = await harness.confirmed(user, "send_phone", "1234", phone="0712345678")
    row = await harness.settled(tx, limit=15)
    assert row["status"] == "completed"
    assert row["mpesa_transaction_id"] == harness.sim.payouts[str(tx)].receipt
    status_queries = [
        q for q in harness.sim.requests_to(api.STATUS_PATH) if q.body["OriginalConversationID"] == str(tx)
    ]
    assert len(status_queries) == 1
    assert status_queries[0].body["ResultURL"] == f"{harness.callback_base}/status/result"
    [cb] = await harness.callbacks(tx)
    assert cb["kind"] == "status_result" and cb["outcome"] == "completed"


async def test_timeout_of_a_failed_payout_is_reconciled_as_failed(harness: Harness) -> None:
    user = await harness.user("2000.00")
    harness.sim.add_rule(Behaviour(outcome="fail", result_code=1, callback="none"), amount=432)
    tx = await harness.confirmed(user, "send_phone", "432", phone="0712345678")
    row = await harness.settled(tx, limit=15)
    assert row["status"] == "failed"
    assert await harness.wallet(user) == Decimal("2000.00")


async def test_duplicate_callback_settles_once(harness: Harness) -> None:
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback="twice", code_as_string=True), amount=2500)
    tx = await harness.confirmed(user, "send_phone", "2500", phone="0712345678")
    await harness.settled(tx)
    await harness.sim.idle()
    outcomes = [r["outcome"] for r in await harness.callbacks(tx)]
    assert outcomes == ["completed", "already_settled"]
    rows = await harness.pool.fetchval("SELECT count(*) FROM balance_history WHERE transaction_id = $1", tx)
    assert rows == 2  # debit and fee, no second anything
    assert (await harness.tx(tx))["status"] == "completed"


async def test_failed_duplicate_callback_refunds_once(harness: Harness) -> None:
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(outcome="fail", result_code=1, callback="twice"), amount=2600)
    tx = await harness.confirmed(user, "send_phone", "2600", phone="0712345678")
    await harness.settled(tx)
    await harness.sim.idle()
    assert [r["outcome"] for r in await harness.callbacks(tx)] == ["failed", "already_settled"]
    assert await harness.wallet(user) == Decimal("5000.00")


async def test_out_of_order_callbacks_settle_once(harness: Harness) -> None:
    """The result overtakes the synchronous answer, then a stale queue-timeout notice arrives."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback="out_of_order"), amount=1500)
    tx = await harness.confirmed(user, "paybill", "1500", paybill="888880", account="A1")
    row = await harness.settled(tx)
    await harness.sim.idle()
    assert row["status"] == "completed"
    outcomes = [(r["kind"], r["outcome"]) for r in await harness.callbacks(tx)]
    assert outcomes[0] == ("payout_result", "completed")
    assert ("payout_timeout", "status_check_scheduled") in outcomes
    _one_payout(harness, tx)
    outbox = await harness.pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)
    assert outbox["status"] == "settled"


def quick_retries(harness: Harness, *, backoff_base: float, backoff_cap: float) -> None:
    """Retry within the test's patience: short backoff and lease, reconcile after a second."""
    assert harness.service.payouts is not None
    payouts = harness.service.payouts
    payouts.config = dataclasses.replace(
        payouts.config, reconcile_after=1, lease_seconds=5, backoff_base=backoff_base, backoff_cap=backoff_cap
    )


async def test_transient_errors_are_retried_with_the_same_id(harness: Harness) -> None:
    user = await harness.user()
    harness.sim.add_rule(Behaviour(http_error=500), amount=1111, times=2)
    quick_retries(harness, backoff_base=0.05, backoff_cap=0.1)
    tx = await harness.confirmed(user, "send_phone", "1111", phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    sent = harness.sim.sent_payouts(str(tx))
    assert len(sent) == 3 and {r.body["OriginatorConversationID"] for r in sent} == {str(tx)}
    _one_payout(harness, tx)
    attempts = await harness.pool.fetchval("SELECT attempts FROM payout_outbox WHERE transaction_id = $1", tx)
    assert attempts == 3


async def test_lost_answer_then_duplicate_id_is_treated_as_sent(harness: Harness) -> None:
    """Daraja accepted the payout but its answer was lost: the resend is refused as a duplicate, which
    means 'already sent', and the one real payout settles once."""
    user = await harness.user()
    harness.sim.add_rule(
        Behaviour(lose_response=True, delay=3.0), amount=2222, times=1
    )  # result after the resend
    quick_retries(harness, backoff_base=0.02, backoff_cap=0.05)
    tx = await harness.confirmed(user, "send_phone", "2222", phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    assert len(harness.sim.sent_payouts(str(tx))) == 2  # the original and the refused resend
    _one_payout(harness, tx)
    outbox = await harness.pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)
    assert outbox["status"] == "settled"


async def test_success_after_a_refund_is_a_recorded_conflict_not_a_second_move(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """M-Pesa first says a payout failed (we refund), then that it was paid after all: software cannot undo
    either move, so nothing changes and the contradiction is recorded and logged for a person."""
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(outcome="fail", result_code=1), amount=2700)
    tx = await harness.confirmed(user, "send_phone", "2700", phone="0712345678")
    assert (await harness.settled(tx))["status"] == "failed"
    await harness.sim.idle()
    conversation = await harness.pool.fetchval(
        "SELECT conversation_id FROM payout_outbox WHERE transaction_id = $1", tx
    )
    with caplog.at_level(logging.ERROR):
        status, body = await harness.post_callback(
            "payout/result",
            {"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok", "OriginatorConversationID":
                        str(tx), "ConversationID": conversation, "TransactionID": "SLATE1"}},
        )  # fmt: skip
    assert (status, body) == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})
    assert [r["outcome"] for r in await harness.callbacks(tx)][-1] == "settlement_conflict"
    assert "SETTLEMENT CONFLICT" in caplog.text
    assert (await harness.tx(tx))["status"] == "failed"
    assert await harness.wallet(user) == Decimal("5000.00")


async def test_callback_for_an_unknown_id_is_acknowledged_and_changes_nothing(harness: Harness) -> None:
    user = await harness.user("100.00")
    for originator in (str(uuid.uuid4()), "AG_20240101_not_ours"):
        status, body = await harness.post_callback(
            "payout/result",
            {"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok", "OriginatorConversationID":
                        originator, "ConversationID": "AG_x", "TransactionID": "SXX"}},
        )  # fmt: skip
        assert (status, body) == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})
        row = await harness.pool.fetchrow(
            "SELECT outcome, transaction_id FROM mpesa_callbacks WHERE originator_conversation_id = $1",
            originator,
        )
        assert (row["outcome"], row["transaction_id"]) == ("unknown_id", None)
    status, body = await harness.post_callback(
        "stk", {"Body": {"stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "ws_CO_unknown",
                                          "ResultCode": 0, "ResultDesc": "ok"}}},
    )  # fmt: skip
    assert (status, body) == (200, {"ResultCode": 0, "ResultDesc": "Accepted"})
    outcome = await harness.pool.fetchval(
        "SELECT outcome FROM mpesa_callbacks WHERE checkout_request_id = $1 ORDER BY id DESC LIMIT 1",
        "ws_CO_unknown",
    )
    assert outcome == "not_found"  # kept for a while in case its push's answer is late; changes nothing
    assert await harness.wallet(user) == Decimal("100.00")


async def test_callback_with_another_amount_is_refused_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(callback_amount=Decimal("9999")), amount=900)
    caplog.set_level(logging.ERROR, logger="ledger.mpesa_callbacks")
    tx = await harness.confirmed(user, "send_phone", "900", phone="0712345678")

    async def refused() -> bool:
        return any(r["outcome"] == "amount_mismatch" for r in await harness.callbacks(tx))

    await harness.wait_for(refused)
    assert (await harness.tx(tx))["status"] == "processing"
    assert any("REFUSED" in r.getMessage() and str(tx) in r.getMessage() for r in caplog.records)
    [delivery] = await harness.sim.delivered(
        harness.service.urls.payout_result,
        where=lambda d: d.body["Result"]["OriginatorConversationID"] == str(tx),
    )
    assert delivery.status == 200
    # The truth still arrives: the status query (amount right) settles it.
    row = await harness.settled(tx, limit=15)
    assert row["status"] == "completed"


async def test_wrong_secret_or_kind_is_404_and_malformed_json_400(harness: Harness) -> None:
    wrong = f"{harness.base_url}/v1/callbacks/not-the-secret/payout/result"
    async with harness.http.post(wrong, json={}) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not_found"
    async with harness.http.post(f"{harness.base_url}/v1/callbacks/{CALLBACK_SECRET}/nope", json={}) as r:
        assert r.status == 404
    async with harness.http.post(f"{harness.callback_base}/payout/result", data=b"{not json") as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_json"
    status, body = await harness.post_callback("payout/result", {"Result": {"no": "code"}})
    assert status == 200 and body["ResultCode"] == 0  # recorded as malformed; Daraja gets its ack


async def test_synchronous_rejection_refunds_without_a_callback(harness: Harness) -> None:
    """A payout that cannot even be asked of M-Pesa (a bank with no known paybill) is refused before it
    leaves, and amount and fee go back to the wallet."""
    user = await harness.user("1000.00")
    tx = await harness.confirmed(user, "mpesa_to_bank", "100", bank_code="99", account="12345")
    row = await harness.settled(tx)
    assert row["status"] == "failed" and "no M-Pesa paybill" in row["error_message"]
    assert harness.sim.sent_payouts(str(tx)) == []
    assert await harness.wallet(user) == Decimal("1000.00")


async def test_competing_workers_send_each_payout_once(harness: Harness) -> None:
    """Several workers (as in several server processes) claim with SKIP LOCKED and a lease: one send each."""
    assert harness.service.payouts is not None and harness.service.client is not None
    extra = [
        PayoutWorker(
            harness.pool, harness.service.client, harness.service.payouts.config, ledger=harness.ledger
        )
        for _ in range(3)
    ]
    user = await harness.user("100000.00")
    txs = [await harness.confirmed(user, "send_phone", str(100 + i), phone="0712345678") for i in range(20)]

    async def drain(worker: PayoutWorker) -> None:
        for _ in range(20):
            await worker.send_due()

    await asyncio.gather(*(drain(w) for w in extra))
    for tx in txs:
        assert (await harness.settled(tx))["status"] == "completed"
        assert len(harness.sim.sent_payouts(str(tx))) == 1
