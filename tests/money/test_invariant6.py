"""Invariant 6 (ledger.md): every credit is backed by an external fact. The checker must see a credit that
no one paid in, however it was written; and a session is ended only for its own user."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest

from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.mpesa.conftest import fresh_phone


async def _user(pool: asyncpg.Pool, balance: str = "100.00") -> uuid.UUID:
    return (await create_user(pool, fresh_phone(), balance=Decimal(balance), plan="pro")).user_id


@pytest.mark.parametrize(
    "forgery",
    [
        "SELECT update_user_balance($1, NULL, 5000, 'gift')",
        "SELECT update_user_balance($1, NULL, 5000, 'topup')",
        "SELECT update_user_balance($1, NULL, 5000, 'opening_balance')",
        "SELECT update_user_balance($1, (SELECT id FROM transactions WHERE user_id = $1 LIMIT 1), 5000,"
        " 'refund')",
        "SELECT update_user_balance($1, (SELECT id FROM transactions WHERE user_id = $1 LIMIT 1), 5000,"
        " 'bank_credit')",
        "SELECT update_user_balance($1, NULL, 5000, 'topup',"
        " (SELECT id FROM mpesa_transactions WHERE user_id = $1 LIMIT 1))",
        # The top-up's own push marked paid as if our STK query had said so, with no answer recorded.
        "SELECT ledger_credit_stk(NULL, (SELECT checkout_request_id FROM mpesa_transactions"
        " WHERE user_id = $1 LIMIT 1), true, NULL, NULL, NULL, true)",
    ],
)
async def test_the_checker_reports_a_credit_no_one_paid_in(pool: asyncpg.Pool, forgery: str) -> None:
    user = await _user(pool)
    ledger = Ledger(pool)
    # Some honest history first: a payout in flight and a pending top-up.
    p = await ledger.propose(user, ProposalRequest.build(type="send_phone", amount="20", phone="0712345678"))
    await ledger.confirm(p.id, user, p.version, voice_verified=True)
    await ledger.record_topup_request(user, Decimal("50"), "0712345678", f"ws_CO_{uuid.uuid4().hex}", None)
    assert await check_invariants(pool, [user]) == []
    await pool.execute(forgery, user)
    assert await pool.fetchval("SELECT count(*) FROM balance_history WHERE user_id = $1", user) >= 4
    violations = await check_invariants(pool, [user])
    assert any(v.startswith("6_credits_backed_by_external_facts") for v in violations), violations


async def test_honest_credits_are_backed(pool: asyncpg.Pool) -> None:
    user = await _user(pool, "0.00")
    ledger = Ledger(pool)
    checkout = f"ws_CO_{uuid.uuid4().hex}"
    await ledger.record_topup_request(user, Decimal("500"), "0712345678", checkout, None)
    assert (
        await ledger.credit_topup(checkout, success=True, amount=Decimal("500"), receipt="R1") == "credited"
    )
    p = await ledger.propose(user, ProposalRequest.build(type="send_phone", amount="100", phone="0712345678"))
    await ledger.confirm(p.id, user, p.version, voice_verified=True)
    assert await ledger.settle(p.id, success=False, error="declined") == "failed"
    b = await ledger.propose(user, ProposalRequest.build(type="bank_to_mpesa", amount="300", bank_code="01"))
    ref = (await ledger.confirm(b.id, user, b.version, voice_verified=True)).account_reference
    assert ref is not None
    assert await ledger.credit_c2b(
        trans_id=f"T{uuid.uuid4().hex[:9]}", bill_ref=ref, amount=Decimal("300")
    ) == ("credited")
    assert await check_invariants(pool, [user]) == []


async def test_ending_a_session_voids_only_its_own_users_proposals(pool: asyncpg.Pool) -> None:
    """Finding 4: ledger_cancel_session was not scoped to a user; a session id is just text."""
    me, other = await _user(pool, "1000.00"), await _user(pool, "1000.00")
    ledger = Ledger(pool)
    session = f"sess-{uuid.uuid4()}"
    mine = await ledger.propose(
        me, ProposalRequest.build(type="send_phone", amount="10", phone="0712345678", session_id=session)
    )
    theirs = await ledger.propose(
        other, ProposalRequest.build(type="send_phone", amount="10", phone="0712345678", session_id=session)
    )
    assert await ledger.cancel_session(session, user_id=me) == 1
    assert (await ledger.get_transaction(mine.id)).status == "cancelled"  # type: ignore[union-attr]
    assert (await ledger.get_transaction(theirs.id)).status == "pending"  # type: ignore[union-attr]
    assert await ledger.cancel_session(session) == 1  # the sweeper's server-side variant
    assert await check_invariants(pool, [me, other]) == []
