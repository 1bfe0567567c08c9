"""Top-ups are credited once per checkout id, whatever the callbacks; auto top-up never runs twice at once."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from ledger.invariants import check_invariants
from ledger.models import LedgerError, ProposalRequest
from ledger.service import Ledger

from .conftest import MakeUser

D = Decimal


async def test_topup_credited_once_despite_duplicate_callbacks(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("0.00")
    checkout = f"ws_CO_{uuid.uuid4().hex}"
    await ledger.record_topup_request(user, D("500"), "0712000111", checkout, "mr-1")
    outcomes = await asyncio.gather(
        *(ledger.credit_topup(checkout, success=True, amount=D("500"), receipt="RCP1") for _ in range(5))
    )
    assert sorted(outcomes) == ["already_settled"] * 4 + ["credited"]
    assert (await ledger.balance(user)).wallet == D("500.00")
    assert await ledger.credit_topup(checkout, success=False, error="late failure") == "already_settled"
    row = await pool.fetchrow(
        "SELECT status, mpesa_receipt_number FROM mpesa_transactions WHERE user_id = $1", user
    )
    assert tuple(row) == ("completed", "RCP1")
    reasons = await pool.fetch(
        "SELECT reason, change_amount, topup_id FROM balance_history WHERE user_id = $1 ORDER BY seq", user
    )
    assert [r["reason"] for r in reasons] == ["opening_balance", "topup"] and reasons[1][
        "topup_id"
    ] is not None
    assert await ledger.credit_topup("ws_CO_unknown", success=True, amount=D("1")) == "not_found"
    assert await check_invariants(pool, [user]) == []


async def test_topup_amount_mismatch_is_refused(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("0.00")
    checkout = f"ws_CO_{uuid.uuid4().hex}"
    await ledger.record_topup_request(user, D("500"), "0712000111", checkout, None)
    assert (
        await ledger.credit_topup(checkout, success=True, amount=D("5000"), receipt="X") == "amount_mismatch"
    )
    assert (await ledger.balance(user)).wallet == 0
    assert await pool.fetchval(
        "SELECT status FROM mpesa_transactions WHERE checkout_request_id = $1", checkout
    ) == ("pending")
    assert await ledger.credit_topup(checkout, success=True, amount=D("500.00"), receipt="X") == "credited"
    assert await check_invariants(pool, [user]) == []


async def test_failed_topup_credits_nothing_until_mpesa_reports_it_paid(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("10.00")
    checkout = f"ws_CO_{uuid.uuid4().hex}"
    await ledger.record_topup_request(user, D("300"), "0712000111", checkout, None)
    assert await ledger.credit_topup(checkout, success=False, error="Request cancelled by user") == "failed"
    assert await ledger.credit_topup(checkout, success=False, error="again") == "already_settled"
    assert (await ledger.balance(user)).wallet == D("10.00")
    # M-Pesa later says the customer paid after all (a verdict out of order): a success callback alone does
    # not credit a failed top-up (ledger.md, "Who may spend"); an STK query decides (tests/money/
    # test_failed_topup_success.py), and until then nothing is credited, however often it comes.
    for _ in range(2):
        assert (
            await ledger.credit_topup(checkout, success=True, amount=D("300"), receipt="LATE")
            == "needs_query"
        )
    assert await ledger.credit_topup(checkout, success=False, error="stale") == "already_settled"
    assert (await ledger.balance(user)).wallet == D("10.00")
    assert await check_invariants(pool, [user]) == []


@pytest.mark.parametrize("amount", ["0", "-5", "1.234"])
async def test_bad_topup_request_is_refused(ledger: Ledger, make_user: MakeUser, amount: str) -> None:
    user = await make_user("0.00")
    with pytest.raises(LedgerError):
        await ledger.record_topup_request(user, D(amount), "0712000111", f"co-{uuid.uuid4()}", None)


async def test_auto_topup_started_once_when_balance_drops_below_threshold(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user(
        "1000.00",
        plan="pro",
        mpesa_auto_topup=True,
        mpesa_auto_topup_threshold=D("300"),
        mpesa_auto_topup_amount=D("500"),
        pin="4321",
    )

    async def pay(amount: str) -> uuid.UUID | None:
        p = await ledger.propose(
            user, ProposalRequest.build(type="buy_goods_till", amount=amount, till="55555")
        )
        return (await ledger.confirm(p.id, user, 1, voice_verified=True)).auto_topup_id

    assert await pay("100") is None  # 899.50 left: above the threshold
    # Several debits at once below the threshold: still one pending auto top-up.
    proposals = [
        await ledger.propose(user, ProposalRequest.build(type="buy_goods_till", amount="150", till="55555"))
        for _ in range(5)
    ]
    # (six payments pass the allowance without a PIN: each is confirmed with it, as the app would)
    results = await asyncio.gather(
        *(ledger.confirm(p.id, user, 1, voice_verified=True, pin="4321") for p in proposals)
    )
    started = [r.auto_topup_id for r in results if r.auto_topup_id is not None]
    assert len(started) == 1
    rows = await pool.fetch(
        "SELECT id, kind, status, amount, phone_number, checkout_request_id FROM mpesa_transactions"
        " WHERE user_id = $1",
        user,
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["kind"], row["status"], row["amount"], row["checkout_request_id"]) == (
        "auto_topup",
        "pending",
        D("500.00"),
        None,
    )
    with pytest.raises(LedgerError) as err:  # the worker cannot start a second one either
        await ledger.record_topup_request(user, D("500"), row["phone_number"], None, None, kind="auto_topup")
    assert err.value.code == "auto_topup_pending"
    # The worker sends the STK push, names it, and the callback credits it.
    checkout = f"ws_CO_{uuid.uuid4().hex}"
    assert await ledger.attach_checkout(row["id"], checkout, "mr")
    assert not await ledger.attach_checkout(row["id"], "another", "mr")
    assert await ledger.credit_topup(checkout, success=True, amount=D("500"), receipt="AUTO1") == "credited"
    # Once settled, a new drop may start a new one.
    assert await pay("500") is not None
    assert await check_invariants(pool, [user]) == []


async def test_callbacks_naming_their_topup_bind_a_lost_push_and_never_credit_it_twice(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    """The push's answer (its checkout id) was lost: the callback, which names the top-up in its URL, binds
    it and credits once. Another push's success for the same top-up (issue 7, finding 2: a forged or
    replayed callback with a fresh CheckoutRequestID) credits nothing by its word: it waits for an STK
    query, and even a verified one credits nothing more once the top-up is credited ('paid_twice', for a
    person)."""
    user = await make_user("0.00")
    topup = await ledger.record_topup_request(user, D("200"), "0712000111", None, None)
    first, second = f"ws_CO_{uuid.uuid4().hex}", f"ws_CO_{uuid.uuid4().hex}"
    for expected in ("credited", "already_settled"):
        outcome = await ledger.credit_topup(
            first, success=True, amount=D("200"), receipt="R1", topup_id=topup
        )
        assert outcome == expected
    for _ in range(5):
        fresh = f"ws_CO_{uuid.uuid4().hex}"
        outcome = await ledger.credit_topup(fresh, success=True, amount=D("200"), receipt="R", topup_id=topup)
        assert outcome == "needs_query"
    assert await ledger.credit_topup(second, success=True, receipt="R2", topup_id=topup) == "needs_query"
    verified = await ledger.credit_topup(second, success=True, receipt="R2", topup_id=topup, verified=True)
    assert verified == "paid_twice"
    assert await ledger.credit_topup(first, success=False) == "already_settled"
    assert (await ledger.balance(user)).wallet == D("200.00")
    bound = await pool.fetchval("SELECT checkout_request_id FROM mpesa_transactions WHERE id = $1", topup)
    assert bound == first
    assert await check_invariants(pool, [user]) == []


async def test_a_verified_second_push_replaces_an_unpaid_first_and_credits_once(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("0.00")
    topup = await ledger.record_topup_request(user, D("300"), "0712000111", None, None)
    first, second = f"ws_CO_{uuid.uuid4().hex}", f"ws_CO_{uuid.uuid4().hex}"
    assert await ledger.attach_checkout(topup, first, "m1")
    assert await ledger.credit_topup(second, success=True, topup_id=topup) == "needs_query"
    assert (await ledger.balance(user)).wallet == D("0.00")
    # The STK query of the second push says it was paid (recorded as TopupService._query records it): it
    # replaces the first, credited once.
    await pool.execute(
        "INSERT INTO mpesa_stk_queries (checkout_request_id, result_code, body) VALUES ($1, '0', $2)",
        second,
        {"CheckoutRequestID": second, "ResultCode": "0", "ResultDesc": "The service request is processed."},
    )
    outcomes = await asyncio.gather(
        *(ledger.credit_topup(second, success=True, topup_id=topup, verified=True) for _ in range(3))
    )
    assert sorted(outcomes) == ["already_settled", "already_settled", "credited"]
    assert await ledger.credit_topup(first, success=True, verified=True) == "paid_twice"
    assert (await ledger.balance(user)).wallet == D("300.00")
    assert await check_invariants(pool, [user]) == []
