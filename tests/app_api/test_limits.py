"""One limit for one transaction, wherever it is asked: the API refuses above the number the ledger refuses
above (`ledger/limits.py` is its only home; the SQL reads it as a migration placeholder)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ledger.limits import MAX_TRANSACTION_KES, kes
from ledger.models import LedgerError, ProposalRequest
from ledger.service import Ledger
from tests.app_api.conftest import Api, MakeApiUser
from tests.app_api.test_api_keys import PIN, _key, _pay, _payee


async def test_the_api_and_the_ledger_refuse_above_the_same_number(
    api: Api, make_api_user: MakeApiUser, ledger: Ledger
) -> None:
    user = await make_api_user(balance="600000.00", plan="business", pin=PIN)
    key = await _key(api, user, ["read", "pay"], pin=PIN)
    phone = await _payee(api, user)

    # The API, over HTTP: one shilling above the limit is refused, and the answer names the limit.
    over = await _pay(api, key, "over", phone, amount=str(MAX_TRANSACTION_KES + 1))
    assert over.status == 400 and over.body["error"]["code"] == "invalid_amount"
    api_says = over.body["error"]["message"]
    assert f"to {kes(MAX_TRANSACTION_KES)} shillings" in api_says
    at = await _pay(api, key, "at", phone, amount=str(MAX_TRANSACTION_KES))
    assert at.body.get("error", {}).get("code") not in {"invalid_amount", "amount_above_limit"}, at.body

    # The ledger, in SQL (any caller): one cent above the same number is refused, the limit itself is not.
    with pytest.raises(LedgerError) as refused:
        await ledger.propose(
            user.id,
            ProposalRequest.build(
                type="send_phone", amount=MAX_TRANSACTION_KES + Decimal("0.01"), phone=phone
            ),
        )
    assert refused.value.code == "amount_above_limit"
    assert refused.value.message.endswith(f"KES {kes(MAX_TRANSACTION_KES)}")
    proposal = await ledger.propose(
        user.id, ProposalRequest.build(type="send_phone", amount=MAX_TRANSACTION_KES, phone=phone)
    )
    assert proposal.amount == MAX_TRANSACTION_KES

    # Both name the one number a person is told: 250,000 today.
    number = kes(MAX_TRANSACTION_KES)
    assert number in api_says and number in refused.value.message
    assert json.dumps(number) == '"250,000"'
