"""bank_to_mpesa as it really happens (issue 7, finding 1): the person pays the business paybill from their
bank app, and only Daraja's C2B confirmation for the reference credits the wallet, once per TransID, with the
amount that arrived. Every test goes over real HTTP (our routes, the Daraja simulator) on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from ledger.c2b import register_urls
from ledger.daraja import client as api
from ledger.models import ProposalRequest
from tests.mpesa.conftest import Harness
from voice_server.c2b_routes import c2b_urls

PAYBILL = "600000"


async def _expect_deposit(h: Harness, user: uuid.UUID, amount: str) -> tuple[uuid.UUID, str]:
    """Confirm a bank_to_mpesa: (transaction id, account reference to pay with)."""
    proposal = await h.ledger.propose(
        user, ProposalRequest.build(type="bank_to_mpesa", amount=amount, bank_code="68")
    )
    result = await h.ledger.confirm(proposal.id, user, proposal.version, voice_verified=True)
    assert result.paybill == PAYBILL and result.account_reference is not None
    return proposal.id, result.account_reference


def _confirmation(
    ref: str, amount: Any, trans_id: str | None = None, shortcode: str = PAYBILL
) -> dict[str, Any]:
    return {
        "TransactionType": "Pay Bill",
        "TransID": trans_id or f"T{uuid.uuid4().hex[:9].upper()}",
        "TransTime": "20261129120000",
        "TransAmount": amount,
        "BusinessShortCode": shortcode,
        "BillRefNumber": ref,
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": "2547 ***** 149",
        "FirstName": "JOHN",
    }


async def _post(h: Harness, kind: str, body: Any, secret: str | None = None) -> tuple[int, Any]:
    secret = secret or h.settings.callback_secret()
    async with h.http.post(f"{h.base_url}/v1/callbacks/{secret}/c2b/{kind}", json=body) as resp:
        return resp.status, await resp.json()


async def test_bank_to_mpesa_credits_nothing_until_the_deposit_arrives(harness: Harness) -> None:
    """Finding 1: a user with no money confirmed bank_to_mpesa 200,000 and was credited at once by a
    simulated bank, then paid 150,000 out. Now nothing is credited until M-Pesa confirms the deposit."""
    user = await harness.user("0.00", plan="basic")
    tx, ref = await _expect_deposit(harness, user, "200000")
    for _ in range(5):  # rounds of every background duty (the loop runs its own beside them)
        await harness.service.run_once()
    assert (await harness.tx(tx))["status"] == "processing"
    assert await harness.wallet(user) == Decimal("0.00")
    assert harness.sim.requests_to(api.B2C_PATH) == [] or all(
        r.body.get("OriginatorConversationID") != str(tx) for r in harness.sim.requests_to(api.B2C_PATH)
    )
    # The person pays from their bank app (an organisation transfer into the paybill, a masked MSISDN).
    await harness.sim.c2b_pay(
        PAYBILL, Decimal("200000"), ref, transaction_type="Organization To Organization Transfer"
    )
    row = await harness.settled(tx)
    assert row["status"] == "completed"
    assert await harness.wallet(user) == Decimal("200000.00") - row["fee"] == Decimal("198000.00")


async def test_the_amount_that_arrived_is_credited_and_a_typed_reference_matches(harness: Harness) -> None:
    user = await harness.user("0.00", plan="basic")
    tx, ref = await _expect_deposit(harness, user, "1000")
    typed = f" {ref[:3].lower()} {ref[3:]} "  # a person types it in their bank app
    await harness.sim.c2b_pay(PAYBILL, Decimal("700"), typed)
    row = await harness.settled(tx)
    assert (row["amount"], row["fee"]) == (Decimal("700.00"), Decimal("7.00"))
    assert await harness.wallet(user) == Decimal("693.00")
    validated = [d for d in harness.sim.deliveries if d.url.endswith("/c2b/validation")]
    assert validated and validated[-1].status == 200


async def test_validation_accepts_only_an_awaited_reference(harness: Harness) -> None:
    user = await harness.user("0.00")
    _, ref = await _expect_deposit(harness, user, "500")
    assert (await _post(harness, "validation", _confirmation(ref, "500.00")))[1] == {
        "ResultCode": "0",
        "ResultDesc": "Accepted",
    }
    cases = [
        (_confirmation("NOSUCHREF", "500.00"), "C2B00012"),
        (_confirmation(ref, "abc"), "C2B00013"),
        (_confirmation(ref, "-5"), "C2B00013"),
        (_confirmation(ref, "500.00", shortcode="999999"), "C2B00015"),
        ({"nothing": "useful"}, "C2B00016"),
        ([1, 2, 3], "C2B00016"),
    ]
    for body, code in cases:
        status, answer = await _post(harness, "validation", body)
        assert status == 200 and answer == {"ResultCode": code, "ResultDesc": "Rejected"}, (body, answer)


async def test_a_rejected_deposit_goes_back_and_an_unknown_reference_is_kept_for_a_person(
    harness: Harness,
) -> None:
    # With validation on, a payment with a reference nobody awaits is refused: the payer keeps the money.
    refused = await harness.sim.c2b_pay(PAYBILL, Decimal("300"), "WHOKNOWS1")
    assert refused.validated == "C2B00012" and not refused.confirmed
    # Without validation (Safaricom has not enabled it) the money arrives: recorded for a person.
    harness.sim.c2b_validation = False
    arrived = await harness.sim.c2b_pay(PAYBILL, Decimal("300"), "WHOKNOWS1")
    assert arrived.confirmed
    row = await harness.pool.fetchrow("SELECT * FROM c2b_deposits WHERE trans_id = $1", arrived.trans_id)
    assert (
        row["outcome"] == "unmatched" and row["amount"] == Decimal("300.00") and row["transaction_id"] is None
    )
    assert row["msisdn"] == "254708****49"  # masked, as Daraja sends it: kept, never matched on


async def test_replayed_and_concurrent_confirmations_credit_once_per_transid(harness: Harness) -> None:
    """Attack: the same confirmation (a known reference, one TransID) posted again and again, ten at once."""
    user = await harness.user("0.00", plan="pro")
    tx, ref = await _expect_deposit(harness, user, "2000")
    body = _confirmation(ref, "2000.00", trans_id="RPLY" + uuid.uuid4().hex[:6].upper())
    answers = await asyncio.gather(*(_post(harness, "confirmation", body) for _ in range(10)))
    assert all(a == (200, {"ResultCode": 0, "ResultDesc": "Success"}) for a in answers), answers
    assert await harness.wallet(user) == Decimal("1990.00")
    # Another TransID for the same reference (a second transfer, or a forged one) credits nothing more.
    again = _confirmation(ref, "2000.00")
    assert (await _post(harness, "confirmation", again))[0] == 200
    assert await harness.wallet(user) == Decimal("1990.00")
    outcomes = await harness.pool.fetch(
        "SELECT outcome FROM c2b_deposits WHERE account_reference = $1 ORDER BY id", ref
    )
    assert [r["outcome"] for r in outcomes] == ["credited", "reference_used"]
    assert (await harness.tx(tx))["mpesa_transaction_id"] == body["TransID"]


async def test_forged_and_tampered_confirmations_credit_nothing(harness: Harness) -> None:
    user = await harness.user("0.00")
    tx, ref = await _expect_deposit(harness, user, "800")
    # Without the callback secret: not found, nothing recorded.
    status, _ = await _post(harness, "confirmation", _confirmation(ref, "800.00"), secret="guessed-secret")
    assert status == 404
    # Amounts that are not money, a foreign shortcode, broken bodies: acknowledged, never credited.
    for body in (
        _confirmation(ref, "NaN"),
        _confirmation(ref, "Infinity"),
        _confirmation(ref, "-800"),
        _confirmation(ref, "1e9"),
        _confirmation(ref, "800.001"),
        _confirmation(ref, True),
        _confirmation(ref, "800.00", shortcode="123456"),
        {"TransID": "", "TransAmount": "800", "BillRefNumber": ref},
    ):
        status, _ = await _post(harness, "confirmation", body)
        assert status == 200, body
    async with harness.http.post(
        f"{harness.base_url}/v1/callbacks/{harness.settings.callback_secret()}/c2b/confirmation",
        data=b'{"TransID": "X", "TransAmount": NaN}',
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    assert await harness.wallet(user) == Decimal("0.00")
    assert (await harness.tx(tx))["status"] == "processing"
    kept = await harness.pool.fetchval(
        "SELECT count(*) FROM c2b_deposits WHERE account_reference = $1 AND outcome = 'wrong_shortcode'", ref
    )
    assert kept == 1


async def test_a_missed_confirmation_is_found_by_pull_transactions(harness: Harness) -> None:
    user = await harness.user("0.00", plan="pro")
    tx, ref = await _expect_deposit(harness, user, "1500")
    await harness.pool.execute(
        "UPDATE c2b_expected_deposits SET created_at = now() - interval '1 hour' WHERE transaction_id = $1",
        tx,
    )
    lost = await harness.sim.c2b_pay(PAYBILL, Decimal("1500"), ref, deliver=False)
    assert not lost.confirmed
    assert harness.service.c2b is not None
    await harness.service.c2b.reconciler.run_once(now=0, force=True)
    row = await harness.settled(tx)
    assert row["status"] == "completed" and row["mpesa_transaction_id"] == lost.trans_id
    assert await harness.wallet(user) == Decimal("1492.50")
    source = await harness.pool.fetchval("SELECT source FROM c2b_deposits WHERE trans_id = $1", lost.trans_id)
    assert source == "pull"


async def test_an_expected_deposit_fails_after_24_hours_and_a_late_one_waits_for_a_person(
    harness: Harness,
) -> None:
    from voice_server.sweeper import sweep

    user = await harness.user("100.00")
    tx, ref = await _expect_deposit(harness, user, "900")
    await harness.pool.execute(
        "UPDATE c2b_expected_deposits SET expires_at = now() - interval '1 second' WHERE transaction_id = $1",
        tx,
    )
    result = await sweep(harness.pool)
    assert result.deposits_expired >= 1
    row = await harness.tx(tx)
    assert row["status"] == "failed" and "24 hours" in row["error_message"]
    assert await harness.wallet(user) == Decimal("100.00")  # nothing to refund: nothing left the wallet
    harness.sim.c2b_validation = False
    late = await harness.sim.c2b_pay(PAYBILL, Decimal("900"), ref)
    outcome = await harness.pool.fetchval(
        "SELECT outcome FROM c2b_deposits WHERE trans_id = $1", late.trans_id
    )
    assert outcome == "reference_expired"
    assert await harness.wallet(user) == Decimal("100.00")


async def test_registration_is_tolerant_of_already_registered(harness: Harness) -> None:
    """Production registers URLs once; a repeat answers 500.003.1001, which start-up takes as done."""
    harness.sim.c2b_register_once = True
    confirmation, validation = c2b_urls(harness.settings)
    assert harness.sim.c2b_urls[PAYBILL]["ConfirmationURL"] == confirmation  # registered at start-up
    assert harness.service.client is not None
    outcome = await register_urls(
        harness.service.client, shortcode=PAYBILL, confirmation_url=confirmation, validation_url=validation
    )
    assert outcome == "already_registered"
    assert "mpesa" not in confirmation.lower()


async def test_concurrent_deposits_with_different_transids_for_one_reference_credit_once(
    harness: Harness,
) -> None:
    """Attack: many confirmations for one reference, each with its own TransID, all at once."""
    user = await harness.user("0.00", plan="pro")
    tx, ref = await _expect_deposit(harness, user, "3000")
    bodies = [_confirmation(ref, "3000.00") for _ in range(12)]
    answers = await asyncio.gather(*(_post(harness, "confirmation", b) for b in bodies))
    assert {status for status, _ in answers} == {200}
    assert await harness.wallet(user) == Decimal("2985.00")
    outcomes = sorted(
        r["outcome"]
        for r in await harness.pool.fetch(
            "SELECT outcome FROM c2b_deposits WHERE account_reference = $1", ref
        )
    )
    assert outcomes == ["credited"] + ["reference_used"] * 11
    assert (await harness.tx(tx))["status"] == "completed"
