"""The life of a transaction (ledger.md): propose with a hold, revise, confirm once, cancel, expire,
settle."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from ledger.invariants import check_invariants
from ledger.models import Balance, LedgerError, ProposalRequest
from ledger.service import Ledger

from .conftest import MakeUser

D = Decimal
MAMA = "0733444555"


def send(amount: str, phone: str = MAMA, **kw: Any) -> ProposalRequest:
    return ProposalRequest.build(type="send_phone", amount=amount, phone=phone, **kw)


class Clock:
    """A clock the test moves by hand (the dialogue injects one the same way)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def history(pool: asyncpg.Pool, user_id: uuid.UUID) -> list[tuple[str, Decimal, uuid.UUID | None]]:
    rows = await pool.fetch(
        "SELECT reason, change_amount, transaction_id FROM balance_history WHERE user_id = $1 ORDER BY seq",
        user_id,
    )
    return [(r["reason"], r["change_amount"], r["transaction_id"]) for r in rows]


async def assert_books(pool: asyncpg.Pool, *users: uuid.UUID) -> None:
    assert await check_invariants(pool, list(users)) == []


# -- holds and fees --------------------------------------------------------------------------------


async def test_proposal_holds_amount_plus_fee(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("1000.00", plan="free")
    p = await ledger.propose(user, send("500"))
    assert (p.status, p.version, p.amount, p.fee, p.total) == (
        "pending",
        1,
        D("500.00"),
        D("10.00"),
        D("510.00"),
    )
    assert p.phone == "254733444555"
    assert p.expires_at is not None and p.created_at is not None
    assert timedelta(seconds=119) < p.expires_at - p.created_at <= timedelta(seconds=121)
    assert await ledger.balance(user) == Balance(wallet=D("1000.00"), held=D("510.00"), available=D("490.00"))
    # Holds add up: a second proposal must fit what is left available.
    with pytest.raises(LedgerError) as err:
        await ledger.propose(user, send("481"))  # 481 + 9.62 > 490
    assert err.value.code == "insufficient_balance"
    await ledger.propose(user, send("480"))  # 480 + 9.60 = 489.60 fits
    assert (await ledger.balance(user)).available == D("0.40")
    # Nothing was debited by proposing.
    assert await history(pool, user) == [("opening_balance", D("1000.00"), None)]
    await assert_books(pool, user)


@pytest.mark.parametrize(
    ("plan", "amount", "fee"),
    [
        ("free", "10.25", "0.21"),  # 0.205 -> 0.21 (half-up)
        ("free", "100", "2.00"),
        ("basic", "10.50", "0.11"),  # 0.105 -> 0.11
        ("basic", "10.40", "0.10"),  # 0.104 -> 0.10
        ("pro", "101", "0.51"),  # 0.505 -> 0.51
        ("business", "155", "0.47"),  # 0.465 -> 0.47
        ("business", "150", "0.45"),
        ("business", "1", "0.00"),  # 0.003 -> 0.00: no fee
    ],
)
async def test_fee_from_plan_rounded_half_up(
    ledger: Ledger, make_user: MakeUser, plan: str, amount: str, fee: str
) -> None:
    user = await make_user("1000.00", plan=plan)
    # M-Pesa payouts are whole shillings; amounts with cents come in from a bank (bank_to_mpesa).
    if "." in amount:
        request = ProposalRequest.build(type="bank_to_mpesa", amount=amount, bank_code="68")
    else:
        request = ProposalRequest.build(type="buy_goods_till", amount=amount, till="123456")
    p = await ledger.propose(user, request)
    assert p.fee == D(fee)


async def test_no_active_subscription_means_free_terms(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    lapsed = await make_user("1000.00", plan="business")
    await pool.execute("UPDATE subscriptions SET status = 'cancelled' WHERE user_id = $1", lapsed)
    ended = await make_user("1000.00", plan="pro")
    await pool.execute(
        """UPDATE subscriptions SET current_period_start = now() - interval '2 months',
                                    current_period_end = now() - interval '1 month' WHERE user_id = $1""",
        ended,
    )
    for user in (lapsed, ended):
        assert (await ledger.propose(user, send("100"))).fee == D("2.00")


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_data", "code"),
    [
        ({"type": "send_phone", "amount": "0", "phone": MAMA}, "amount_not_positive"),
        ({"type": "send_phone", "amount": "-50", "phone": MAMA}, "amount_not_positive"),
        ({"type": "send_phone", "amount": "250000.01", "phone": MAMA}, "amount_above_limit"),
        ({"type": "send_phone", "amount": "9.99", "phone": MAMA}, "below_minimum"),
        ({"type": "send_phone", "amount": "100.50", "phone": MAMA}, "invalid_amount"),  # no cents on M-Pesa
        ({"type": "buy_goods_till", "amount": "99.5", "till": "123456"}, "invalid_amount"),
        ({"type": "withdraw", "amount": "49", "agent": "123456", "store": "1"}, "below_minimum"),
        ({"type": "send_phone", "amount": "100", "phone": "0201234567"}, "invalid_phone"),
        ({"type": "send_phone", "amount": "100", "phone": "'; DROP TABLE transactions; --"}, "invalid_phone"),
        ({"type": "buy_goods_pochi", "amount": "100", "phone": ""}, "invalid_phone"),
        ({"type": "buy_goods_till", "amount": "100", "till": "12"}, "invalid_recipient"),
        ({"type": "paybill", "amount": "100", "paybill": "888880"}, "invalid_recipient"),
        (
            {"type": "paybill", "amount": "100", "paybill": "888880", "account": "1' OR '1'='1"},
            "invalid_recipient",
        ),
        ({"type": "mpesa_to_bank", "amount": "100", "account": "123"}, "invalid_recipient"),
        ({"type": "withdraw", "amount": "100", "agent": "123456"}, "invalid_recipient"),
        ({"type": "bank_to_mpesa", "amount": "100"}, "invalid_recipient"),
    ],
)
async def test_refusals_leave_nothing_behind(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool, request_data: dict[str, str], code: str
) -> None:
    user = await make_user("1000000.00", plan="pro")
    with pytest.raises(LedgerError) as err:
        await ledger.propose(user, ProposalRequest.build(**request_data))
    assert err.value.code == code
    assert "SELECT" not in err.value.message and "ledger_" not in err.value.message
    assert await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", user) == 0
    assert await ledger.balance(user) == Balance(
        wallet=D("1000000.00"), held=D("0"), available=D("1000000.00")
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"type": "send_phone", "amount": 10.5, "phone": MAMA}, "invalid_amount"),  # a float
        ({"type": "send_phone", "amount": "1.005", "phone": MAMA}, "invalid_amount"),
        ({"type": "send_phone", "amount": "ten", "phone": MAMA}, "invalid_amount"),
        ({"type": "send_phone", "amount": "NaN", "phone": MAMA}, "invalid_amount"),
        ({"type": "steal", "amount": "10", "phone": MAMA}, "invalid_type"),
        ({"type": "send_phone", "amount": "10", "phone": MAMA, "confidence_score": 101}, "invalid_input"),
        ({"type": "send_phone", "amount": "10", "phone": MAMA, "till": "1" * 65}, "invalid_input"),
    ],
)
def test_bad_input_is_a_ledger_error(data: dict[str, Any], code: str) -> None:
    with pytest.raises(LedgerError) as err:
        ProposalRequest.build(**data)
    assert err.value.code == code


async def test_unknown_user_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError) as err:
        await ledger.propose(uuid.uuid4(), send("100"))
    assert err.value.code == "user_not_found"


async def test_monthly_limit_counts_transactions_that_reached_processing(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("10000.00", plan="free", pin="4321")  # 5 a month
    spare = await ledger.propose(user, send("100"))  # pending: does not count
    for i in range(5):
        p = await ledger.propose(user, send("100"))
        await ledger.confirm(p.id, user, 1, voice_verified=True)
        if i == 0:  # a failed payout still reached processing: it counts
            assert await ledger.settle(p.id, success=False, error="declined") == "failed"
    with pytest.raises(LedgerError) as err:
        await ledger.propose(user, send("100"))
    assert err.value.code == "monthly_limit"
    # A proposal made before the limit was reached is refused at confirmation, and its hold is voided.
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(spare.id, user, 1, voice_verified=True)
    assert err.value.code == "monthly_limit"
    tx = await ledger.get_transaction(spare.id)
    assert tx is not None and tx.status == "cancelled"
    assert (await ledger.balance(user)).held == 0
    # Next month the count starts again (35 days on is always another calendar month).
    next_month = Ledger(pool, clock=Clock(datetime.now(UTC) + timedelta(days=35)))
    await next_month.propose(user, send("100"))
    await assert_books(pool, user)


async def test_daily_limit_in_nairobi_time(make_user: MakeUser, pool: asyncpg.Pool) -> None:
    nairobi = ZoneInfo("Africa/Nairobi")
    local_now = datetime.now(nairobi)
    midnight = datetime.combine(local_now.date() + timedelta(days=1), datetime.min.time(), nairobi)
    clock = Clock(midnight - timedelta(minutes=30))
    ledger = Ledger(pool, clock=clock)
    user = await make_user("700000.00", plan="business", pin="4321")
    for _ in range(2):
        p = await ledger.propose(user, send("250000"))
        await ledger.confirm(p.id, user, 1, voice_verified=True, pin="4321")
    with pytest.raises(LedgerError) as err:
        await ledger.propose(user, send("10"))
    assert err.value.code == "daily_limit"
    clock.advance(3600)  # 00:30 the next day in Nairobi (21:30 UTC): a new day
    p = await ledger.propose(user, send("10"))
    assert p.status == "pending"
    await assert_books(pool, user)


async def test_daily_limit_rechecked_at_confirm(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("800000.00", plan="business", pin="4321")
    first = await ledger.propose(user, send("250000"))
    second = await ledger.propose(user, send("250000"))
    third = await ledger.propose(user, send("1000"))
    await ledger.confirm(first.id, user, 1, voice_verified=False, pin="4321")
    await ledger.confirm(second.id, user, 1, voice_verified=False, pin="4321")
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(third.id, user, 1, voice_verified=False)
    assert err.value.code == "daily_limit"
    assert (await ledger.balance(user)).held == 0
    await assert_books(pool, user)


# -- confirm ---------------------------------------------------------------------------------------


async def test_confirm_debits_amount_then_fee_and_queues_payout(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("1000.00", plan="basic")
    p = await ledger.propose(
        user, send("500", voice_command_text="tuma mia tano kwa mama", confidence_score=92)
    )
    r = await ledger.confirm(p.id, user, 1, voice_verified=True)
    assert (r.outcome, r.status, r.transaction_id, r.amount, r.fee) == (
        "confirmed",
        "processing",
        p.id,
        D("500.00"),
        D("5.00"),
    )
    assert (r.wallet_balance, r.available) == (D("495.00"), D("495.00"))
    tx = await ledger.get_transaction(p.id)
    assert tx is not None and tx.status == "processing" and tx.voice_verified and tx.confirmed_at is not None
    assert await ledger.balance(user) == Balance(wallet=D("495.00"), held=D("0"), available=D("495.00"))
    assert await history(pool, user) == [
        ("opening_balance", D("1000.00"), None),
        ("debit", D("-500.00"), p.id),
        ("fee", D("-5.00"), p.id),
    ]
    outbox = await pool.fetch(
        "SELECT kind, status, user_id FROM payout_outbox WHERE transaction_id = $1", p.id
    )
    assert [tuple(r) for r in outbox] == [("mpesa_payout", "pending", user)]
    await assert_books(pool, user)


async def test_confirm_twice_debits_once_and_returns_the_same(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("1000.00", plan="free")
    p = await ledger.propose(user, send("100"))
    first = await ledger.confirm(p.id, user, 1, voice_verified=True)
    again = await ledger.confirm(p.id, user, 1, voice_verified=False)
    assert again.outcome == "already_confirmed"
    assert again.model_dump(exclude={"outcome"}) == first.model_dump(exclude={"outcome"})
    assert (await ledger.balance(user)).wallet == D("898.00")
    await assert_books(pool, user)


async def test_concurrent_confirms_tap_and_voice_debit_once(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    for _ in range(5):
        user = await make_user("1000.00", plan="free")
        p = await ledger.propose(user, send("100"))
        results = await asyncio.gather(
            *(ledger.confirm(p.id, user, 1, voice_verified=i % 2 == 0) for i in range(4))
        )
        assert sorted(r.outcome for r in results) == ["already_confirmed"] * 3 + ["confirmed"]
        winner = next(r for r in results if r.outcome == "confirmed")
        # Every answer is the winner's result: same transaction, status, balance and channel.
        assert {(r.transaction_id, r.status, r.wallet_balance, r.voice_verified) for r in results} == {
            (p.id, "processing", D("898.00"), winner.voice_verified)
        }
        assert (await ledger.balance(user)).wallet == D("898.00")
        assert await pool.fetchval("SELECT count(*) FROM payout_outbox WHERE transaction_id = $1", p.id) == 1
        await assert_books(pool, user)


async def test_confirm_of_someone_elses_proposal_is_not_found(ledger: Ledger, make_user: MakeUser) -> None:
    owner = await make_user("1000.00")
    other = await make_user("1000.00")
    p = await ledger.propose(owner, send("100"))
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(p.id, other, 1, voice_verified=True)
    assert err.value.code == "not_found"
    with pytest.raises(LedgerError) as err:
        await ledger.cancel(p.id, other, "no")
    assert err.value.code == "not_found"
    assert (await ledger.get_transaction(p.id)).status == "pending"  # type: ignore[union-attr]


# -- corrections -----------------------------------------------------------------------------------


async def test_revision_bumps_version_and_refuses_the_old_one(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("1000.00", plan="free")
    p1 = await ledger.propose(user, send("500"))
    p2 = await ledger.revise(p1.id, user, send("700"))
    assert (p2.id, p2.version, p2.amount, p2.fee) == (p1.id, 2, D("700.00"), D("14.00"))
    assert (await ledger.balance(user)).held == D("714.00")
    with pytest.raises(LedgerError) as err:
        await ledger.revise(p1.id, user, send("990"))  # 990 + 19.80 > 1000
    assert err.value.code == "insufficient_balance"
    assert (await ledger.get_transaction(p1.id)).version == 2  # type: ignore[union-attr]
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(p1.id, user, 1, voice_verified=True)
    assert err.value.code == "stale_version"
    r = await ledger.confirm(p1.id, user, 2, voice_verified=True)
    assert (r.outcome, r.amount) == ("confirmed", D("700.00"))
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(p1.id, user, 1, voice_verified=True)
    assert err.value.code == "stale_version"
    with pytest.raises(LedgerError) as err:
        await ledger.revise(p1.id, user, send("10"))
    assert err.value.code == "already_confirmed"
    assert await ledger.balance(user) == Balance(wallet=D("286.00"), held=D("0"), available=D("286.00"))
    await assert_books(pool, user)


# -- cancel, expiry, sessions ----------------------------------------------------------------------


async def test_cancel_voids_the_hold(ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool) -> None:
    user = await make_user("1000.00", plan="free")
    p = await ledger.propose(user, send("500"))
    c = await ledger.cancel(p.id, user, "user said no")
    assert (c.status, c.error_message) == ("cancelled", "user said no")
    assert (await ledger.cancel(p.id, user, "again")).status == "cancelled"  # idempotent
    assert await ledger.balance(user) == Balance(wallet=D("1000.00"), held=D("0"), available=D("1000.00"))
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(p.id, user, 1, voice_verified=True)
    assert err.value.code == "cancelled"
    confirmed = await ledger.propose(user, send("100"))
    await ledger.confirm(confirmed.id, user, 1, voice_verified=True)
    with pytest.raises(LedgerError) as err:
        await ledger.cancel(confirmed.id, user, "too late")
    assert err.value.code == "already_confirmed"
    assert await history(pool, user) == [
        ("opening_balance", D("1000.00"), None),
        ("debit", D("-100.00"), confirmed.id),
        ("fee", D("-2.00"), confirmed.id),
    ]
    await assert_books(pool, user)


async def test_proposal_expires_after_120_seconds(make_user: MakeUser, pool: asyncpg.Pool) -> None:
    clock = Clock()
    ledger = Ledger(pool, clock=clock)
    user = await make_user("1000.00", plan="free")
    late = await ledger.propose(user, send("100"))
    clock.advance(119)
    in_time = await ledger.propose(user, send("100"))
    ok = await ledger.confirm(late.id, user, 1, voice_verified=True)  # 119 s: still valid
    assert ok.outcome == "confirmed"
    clock.advance(121)
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(in_time.id, user, 1, voice_verified=True)
    assert err.value.code == "expired"
    tx = await ledger.get_transaction(in_time.id)
    assert tx is not None and (tx.status, tx.error_message) == ("cancelled", "expired")
    with pytest.raises(LedgerError) as err:  # and it stays expired
        await ledger.confirm(in_time.id, user, 1, voice_verified=True)
    assert err.value.code == "expired"
    assert await ledger.balance(user) == Balance(wallet=D("898.00"), held=D("0"), available=D("898.00"))
    await assert_books(pool, user)


async def test_sweeper_expires_due_proposals(make_user: MakeUser, pool: asyncpg.Pool) -> None:
    clock = Clock()
    ledger = Ledger(pool, clock=clock)
    user = await make_user("1000.00", plan="pro")
    due = [await ledger.propose(user, send("100")) for _ in range(3)]
    clock.advance(60)
    fresh = await ledger.propose(user, send("100"))
    clock.advance(61)
    assert await ledger.expire_due() >= 3  # (other tests' proposals may be due too)
    assert [(await ledger.get_transaction(p.id)).status for p in due] == ["cancelled"] * 3  # type: ignore[union-attr]
    assert (await ledger.get_transaction(fresh.id)).status == "pending"  # type: ignore[union-attr]
    assert (await ledger.balance(user)).held == fresh.total
    with pytest.raises(LedgerError) as err:
        await ledger.revise(due[0].id, user, send("50"))
    assert err.value.code == "expired"
    await assert_books(pool, user)


async def test_ending_a_session_voids_its_proposals(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("1000.00", plan="pro")
    session = f"sess-{uuid.uuid4()}"
    a = await ledger.propose(user, send("100", session_id=session))
    b = await ledger.propose(user, send("200", session_id=session))
    other = await ledger.propose(user, send("50", session_id="another"))
    await ledger.confirm(a.id, user, 1, voice_verified=True)
    assert await ledger.cancel_session(session) == 1
    assert (await ledger.get_transaction(b.id)).error_message == "session_ended"  # type: ignore[union-attr]
    assert (await ledger.get_transaction(a.id)).status == "processing"  # type: ignore[union-attr]
    assert (await ledger.balance(user)).held == other.total
    await assert_books(pool, user)


# -- settlement ------------------------------------------------------------------------------------


async def test_settle_completed_exactly_once(ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool) -> None:
    user = await make_user("1000.00", plan="free")
    p = await ledger.propose(user, send("100"))
    assert await ledger.settle(p.id, success=True, receipt="QWE123") == "not_processing"
    await ledger.confirm(p.id, user, 1, voice_verified=True)
    assert await ledger.settle(p.id, success=True, receipt="QWE123") == "completed"
    assert await ledger.settle(p.id, success=False, error="late failure") == "already_settled"
    tx = await ledger.get_transaction(p.id)
    assert tx is not None and (tx.status, tx.mpesa_transaction_id) == ("completed", "QWE123")
    assert tx.completed_at is not None
    assert (await ledger.balance(user)).wallet == D("898.00")
    assert (
        await pool.fetchval("SELECT status FROM payout_outbox WHERE transaction_id = $1", p.id) == "settled"
    )
    assert await ledger.settle(uuid.uuid4(), success=True) == "not_found"
    await assert_books(pool, user)


async def test_failed_payout_refunds_amount_and_fee_once(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("1000.00", plan="free")
    p = await ledger.propose(user, send("100"))
    await ledger.confirm(p.id, user, 1, voice_verified=True)
    outcomes = await asyncio.gather(
        ledger.settle(p.id, success=False, error="insufficient funds in B2C account"),
        ledger.settle(p.id, success=False, error="duplicate callback"),
        ledger.settle(p.id, success=True, receipt="LATE"),
    )
    assert sorted(outcomes).count("already_settled") == 2
    tx = await ledger.get_transaction(p.id)
    assert tx is not None
    if tx.status == "failed":
        assert tx.error_message
        assert (await ledger.balance(user)).wallet == D("1000.00")
        assert (await history(pool, user))[-2:] == [
            ("refund", D("100.00"), p.id),
            ("fee_refund", D("2.00"), p.id),
        ]
    else:
        assert tx.status == "completed" and (await ledger.balance(user)).wallet == D("898.00")
    await assert_books(pool, user)

    q = await ledger.propose(user, send("100"))
    await ledger.confirm(q.id, user, 1, voice_verified=True)
    assert await ledger.settle(q.id, success=False, error="declined") == "failed"
    assert (await history(pool, user))[-2:] == [
        ("refund", D("100.00"), q.id),
        ("fee_refund", D("2.00"), q.id),
    ]
    await assert_books(pool, user)


async def test_withdraw_pays_out_to_own_number(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("1000.00", plan="pro", mpesa_number="254799000111")
    p = await ledger.propose(
        user,
        ProposalRequest.build(type="withdraw", amount="500", agent="123456", store="12", phone="0733444555"),
    )
    assert (p.phone, p.agent, p.store, p.fee) == ("254799000111", "123456", "12", D("2.50"))
    await ledger.confirm(p.id, user, 1, voice_verified=True)
    assert (await ledger.balance(user)).wallet == D("497.50")
    await assert_books(pool, user)


async def test_bank_to_mpesa_credits_what_arrived_minus_fee_when_the_deposit_arrives(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("0.00", plan="basic")
    req = ProposalRequest.build(type="bank_to_mpesa", amount="1000", bank_code="68")
    p = await ledger.propose(user, req)  # money comes in: no balance needed, nothing held
    assert (p.fee, p.hold_amount) == (D("10.00"), D("0"))
    assert (await ledger.balance(user)).held == 0
    r = await ledger.confirm(p.id, user, 1, voice_verified=True)
    assert (r.status, r.wallet_balance) == ("processing", D("0.00"))
    assert r.paybill == "600000" and r.account_reference is not None and len(r.account_reference) == 8
    # Nothing is asked of a bank and nobody's word completes it: no outbox row, no settle.
    assert await pool.fetchval("SELECT count(*) FROM payout_outbox WHERE transaction_id = $1", p.id) == 0
    assert await ledger.settle(p.id, success=True, receipt="BANK1") == "not_a_payout"
    assert (await ledger.balance(user)).wallet == D("0.00")
    # The deposit arrives (typed in lower case with a space): 1200 came, so 1200 - 12 is credited.
    ref = r.account_reference[:4].lower() + " " + r.account_reference[4:]
    assert await ledger.credit_c2b(trans_id="TX1", bill_ref=ref, amount=D("1200")) == "credited"
    assert await ledger.credit_c2b(trans_id="TX1", bill_ref=ref, amount=D("1200")) == "already_recorded"
    assert await ledger.credit_c2b(trans_id="TX2", bill_ref=ref, amount=D("50")) == "reference_used"
    assert (await ledger.balance(user)).wallet == D("1188.00")
    assert (await history(pool, user))[-2:] == [
        ("bank_credit", D("1200.00"), p.id),
        ("bank_credit_fee", D("-12.00"), p.id),
    ]
    done = await ledger.get_transaction(p.id)
    assert done is not None and (done.status, done.amount, done.mpesa_transaction_id) == (
        "completed",
        D("1200.00"),
        "TX1",
    )
    await assert_books(pool, user)
