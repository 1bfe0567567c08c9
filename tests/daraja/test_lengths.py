"""Finding 5: references longer than Daraja takes are refused when the payment is proposed (with a code the
dialogue can say), and the client refuses rather than cuts them: a cut bank account number pays the wrong
account."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from daraja_sim import Simulator
from ledger.daraja import client as api
from ledger.daraja.client import DarajaClient, DarajaRejected
from ledger.models import LedgerError, ProposalRequest
from tests.mpesa.conftest import Harness


@pytest.mark.parametrize(("type_", "fields"), [
    ("paybill", {"paybill": "888880"}),
    ("mpesa_to_bank", {"bank_code": "68"}),
])  # fmt: skip
async def test_an_account_longer_than_13_is_refused_at_proposal_time(
    harness: Harness, type_: str, fields: dict[str, str]
) -> None:
    """Before: accepted (up to 20 characters) and cut to 13 when paid."""
    user = await harness.user("5000.00")
    with pytest.raises(LedgerError) as caught:
        await harness.ledger.propose(
            user,
            ProposalRequest(type=type_, amount=Decimal("500"), account="12345678901234", **fields),  # type: ignore[arg-type]
        )
    assert caught.value.code == "account_too_long"
    assert "13" in caught.value.message
    held = await harness.pool.fetchval("SELECT held_balance FROM profiles WHERE id = $1", user)
    assert held == 0


async def test_an_account_of_13_is_paid_exactly_as_given(harness: Harness) -> None:
    user = await harness.user("5000.00")
    tx = await harness.confirmed(user, "mpesa_to_bank", "500", bank_code="68", account="1234567890123")
    assert (await harness.settled(tx))["status"] == "completed"
    [request] = harness.sim.sent_payouts(str(tx))
    assert request.body["AccountReference"] == "1234567890123"


async def test_a_revision_to_a_too_long_account_is_refused(harness: Harness) -> None:
    user = await harness.user("5000.00")
    proposal = await harness.ledger.propose(
        user,
        ProposalRequest(type="paybill", amount=Decimal("500"), paybill="888880", account="SHORT"),  # type: ignore[arg-type]
    )
    with pytest.raises(LedgerError) as caught:
        await harness.ledger.revise(
            proposal.id,
            user,
            ProposalRequest(
                type="paybill",  # type: ignore[arg-type]
                amount=Decimal("500"),
                paybill="888880",
                account="ABCDEFGHIJKLMN",
            ),
        )
    assert caught.value.code == "account_too_long"


async def test_the_client_refuses_long_references_without_sending(
    sim: Simulator, client: DarajaClient
) -> None:
    common: dict[str, Any] = {
        "result_url": "https://e.test/r",
        "timeout_url": "https://e.test/t",
        "remarks": "r",
    }
    with pytest.raises(DarajaRejected):
        await client.b2b(
            command="BusinessPayBill",
            amount=Decimal("10"),
            party_b="247247",
            account_reference="1" * 14,
            **common,
        )
    with pytest.raises(DarajaRejected):
        await client.stk_push(
            amount=Decimal("10"), phone="0712345678", callback_url="https://e.test/cb",
            account_reference="A" * 13, description="Top-up",
        )  # fmt: skip
    with pytest.raises(DarajaRejected):
        await client.stk_push(
            amount=Decimal("10"), phone="0712345678", callback_url="https://e.test/cb",
            account_reference="OngeaPesa", description="D" * 14,
        )  # fmt: skip
    assert sim.requests_to(api.B2B_PATH) == [] and sim.requests_to(api.STK_PUSH_PATH) == []


async def test_the_length_check_is_not_callable_by_user_roles(harness: Harness) -> None:
    for function in ("ledger_check_intent", "ledger_check_intent_before_daraja_lengths"):
        signature = f"{function}(text,numeric,text,text,text,text,text,text,text)"
        for role in ("anon", "authenticated"):
            allowed = await harness.pool.fetchval(
                "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, signature
            )
            assert allowed is False, (role, function)
