"""History pages: newest first by keyset, filters, a tampered cursor refused, never another user's rows."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from decimal import Decimal

import asyncpg
import pytest

from ledger.models import ProposalRequest
from ledger.service import Ledger
from tests.gate_rules import confirm_as_a_person

from .conftest import Api, MakeApiUser, User


async def _payments(ledger: Ledger, user: User, n: int) -> list[uuid.UUID]:
    ids = []
    for i in range(n):
        p = await ledger.propose(
            user.id, ProposalRequest.build(type="send_phone", amount=str(10 + i), phone="0711222333")
        )
        if i % 3 == 0:
            await confirm_as_a_person(ledger, p.id, user.id, 1, pin="2580")
        ids.append(p.id)
    return ids


async def test_pages_are_newest_first_and_never_repeat(
    api: Api, make_api_user: MakeApiUser, ledger: Ledger
) -> None:
    user = await make_api_user("100000", plan="pro", pin="2580")
    made = await _payments(ledger, user, 23)
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        path = "/v1/transactions?limit=5" + (f"&before={before}" if before else "")
        r = await api.call("GET", path, user)
        assert r.status == 200, r.body
        seen += [t["id"] for t in r.body["items"]]
        pages += 1
        before = r.body["next_before"]
        if before is None:
            break
    assert pages == 5 and seen == [str(i) for i in reversed(made)]
    r = await api.call("GET", "/v1/transactions?status=processing&type=send_phone", user)
    assert [t["id"] for t in r.body["items"]] == [str(made[i]) for i in (21, 18, 15, 12, 9, 6, 3, 0)]
    assert {t["status"] for t in r.body["items"]} == {"processing"}
    pending = await api.call("GET", "/v1/transactions?status=pending&limit=100", user)
    assert len(pending.body["items"]) == 15 and pending.body["next_before"] is None
    one = await api.call("GET", f"/v1/transactions/{made[0]}", user)
    assert (one.status, one.body["amount"], one.body["phone"]) == (200, "10.00", "254711222333")


@pytest.mark.parametrize(
    "query",
    [
        "before=garbage",
        "before=" + base64.urlsafe_b64encode(b'["x"]').decode(),
        "before="
        + base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", "nope"]).encode()).decode(),
        "before=" + base64.urlsafe_b64encode(b"' OR 1=1 --").decode(),
        "before=" + "A" * 300,
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=ten",
        "limit=99999999999999999999",
        "status=stolen",
        "type=' OR '1'='1",
    ],
)
async def test_bad_queries_are_400(api: Api, make_api_user: MakeApiUser, query: str) -> None:
    user = await make_api_user()
    r = await api.call("GET", f"/v1/transactions?{query}", user)
    assert r.status == 400, (query, r.body)
    assert r.body["error"]["code"] in ("invalid_cursor", "invalid_limit", "invalid_status", "invalid_type")


async def test_b_never_sees_a_history(
    api: Api, make_api_user: MakeApiUser, ledger: Ledger, pool: asyncpg.Pool
) -> None:
    a, b = await make_api_user("100000", plan="pro"), await make_api_user("100", plan="pro")
    a_tx = await _payments(ledger, a, 4)
    for tx in a_tx:
        r = await api.call("GET", f"/v1/transactions/{tx}", b)
        assert (r.status, r.body["error"]["code"]) == (404, "not_found")
    assert (await api.call("GET", "/v1/transactions?limit=100", b)).body["items"] == []
    # A cursor forged from A's newest row only moves within B's own rows.
    row = await pool.fetchrow("SELECT created_at, id FROM transactions WHERE id = $1", a_tx[-1])
    forged = base64.urlsafe_b64encode(
        json.dumps([(row["created_at"]).isoformat(), str(row["id"])]).encode()
    ).decode()
    assert (await api.call("GET", f"/v1/transactions?before={forged}", b)).body["items"] == []
    history = (await api.call("GET", "/v1/balance-history?limit=200", b)).body["items"]
    assert [h["reason"] for h in history] == ["opening_balance"]
    assert (await api.call("GET", "/v1/transactions/not-a-uuid", b)).status == 404


async def test_balance_history_pages(api: Api, make_api_user: MakeApiUser, ledger: Ledger) -> None:
    user = await make_api_user("1000", plan="pro")
    await _payments(ledger, user, 7)  # 3 confirmed: each a debit and a fee row
    first = await api.call("GET", "/v1/balance-history?limit=4", user)
    second = await api.call("GET", f"/v1/balance-history?limit=4&before={first.body['next_before']}", user)
    rows = first.body["items"] + second.body["items"]
    assert second.body["next_before"] is None and len(rows) == 7
    assert rows[-1]["reason"] == "opening_balance" and rows[-1]["new_balance"] == "1000.00"
    for newer, older in itertools.pairwise(rows):
        assert newer["previous_balance"] == older["new_balance"]
    assert (await api.call("GET", "/v1/balance-history?before=%%%", user)).status == 400


async def test_topup_status_only_for_its_owner(api: Api, make_api_user: MakeApiUser, ledger: Ledger) -> None:
    a, b = await make_api_user("0"), await make_api_user("0")
    topup = await ledger.record_topup_request(
        a.id, Decimal("500"), a.phone, "ws_CO_app_" + uuid.uuid4().hex, None
    )
    r = await api.call("GET", f"/v1/topups/{topup}", a)
    assert (r.status, r.body["status"], r.body["amount"]) == (200, "pending", "500.00")
    assert (await api.call("GET", f"/v1/topups/{topup}", b)).status == 404
    checkout = await ledger.pool.fetchval(
        "SELECT checkout_request_id FROM mpesa_transactions WHERE id = $1", topup
    )
    await ledger.credit_topup(
        checkout, success=True, amount=Decimal("500"), receipt="RCT" + uuid.uuid4().hex[:7]
    )
    r = await api.call("GET", f"/v1/topups/{topup}", a)
    assert (r.body["status"], r.body["mpesa_receipt"][:3]) == ("completed", "RCT")
    me = (await api.call("GET", "/v1/me", a)).body
    assert me["wallet_balance"] == "500.00"
