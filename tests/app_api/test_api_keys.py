"""API access (issue 23) over real HTTP on the app with the run's PostgreSQL: keys, trusted payees and
idempotent payments by key, as a till system would use them."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

import asyncpg

from ledger.invariants import check_invariants
from tests.app_api.conftest import Api, MakeApiUser, Reply, User
from tests.ledger.conftest import fresh_phone

PIN = "4826"


async def _key(api: Api, user: User, scopes: list[str], **extra: object) -> str:
    reply = await api.call("POST", "/v1/api-keys", user, json={"name": "till", "scopes": scopes, **extra})
    assert reply.status == 201, reply.body
    key: str = reply.body["key"]
    assert key.startswith("op_live_")
    return key


async def _payee(api: Api, user: User) -> str:
    phone = fresh_phone()
    reply = await api.call("POST", "/v1/payees", user, json={"phone": phone, "name": "Supplier", "pin": PIN})
    assert reply.status == 201, reply.body
    return phone


async def _pay(api: Api, key: str, idem: str, phone: str, amount: str = "150") -> Reply:
    status, _, text = await api.send(
        "POST",
        "/v1/payments",
        key,
        json={"phone": phone, "amount": amount},
        headers={"Idempotency-Key": idem},
    )
    return Reply(status, json.loads(text))


async def _paid(pool: asyncpg.Pool, user: User) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, amount, fee, status, api_key_id FROM transactions"
        " WHERE user_id = $1 AND status <> 'cancelled'",
        user.id,
    )
    return rows


async def test_twenty_parallel_retries_with_one_idempotency_key_pay_once(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(balance="5000.00", plan="pro", pin=PIN)
    key = await _key(api, user, ["read", "pay"], pin=PIN)
    phone = await _payee(api, user)
    idem = str(uuid.uuid4())
    replies = await asyncio.gather(*(_pay(api, key, idem, phone) for _ in range(20)))
    assert {r.status for r in replies} == {201}, [r.body for r in replies]
    assert len({r.body["transaction_id"] for r in replies}) == 1
    paid = await _paid(pool, user)
    assert len(paid) == 1 and paid[0]["amount"] == Decimal("150.00") and paid[0]["status"] == "processing"
    balance = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.id)
    assert balance == Decimal("5000.00") - Decimal("150.00") - paid[0]["fee"]
    # The same key and body later still answer the same; another body under the key is a 409.
    again = await _pay(api, key, idem, phone)
    assert again.status == 201 and again.body == replies[0].body
    other = await _pay(api, key, idem, phone, amount="151")
    assert other.status == 409 and other.body["error"]["code"] == "idempotency_key_reused"
    assert len(await _paid(pool, user)) == 1


async def test_untrusted_payee_read_key_and_revoked_key_are_refused(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(plan="business", pin=PIN)
    payer = await _key(api, user, ["pay", "read"], pin=PIN)
    reader = await _key(api, user, ["read"])
    trusted = await _payee(api, user)

    stranger = await _pay(api, payer, "a-1", fresh_phone())
    assert stranger.status == 403 and stranger.body["error"]["code"] == "payee_not_trusted"

    by_reader = await _pay(api, reader, "r-1", trusted)
    assert by_reader.status == 403 and by_reader.body["error"]["code"] == "insufficient_scope"
    # ... though the read key reads the owner's rows, and only theirs.
    me = await api.send("GET", "/v1/me", reader)
    assert me[0] == 200 and str(user.id) in me[2]

    assert (await _pay(api, payer, "ok-1", trusted)).status == 201
    listed = await api.call("GET", "/v1/api-keys", user)
    payer_id = next(k["id"] for k in listed.body["items"] if "pay" in k["scopes"])
    assert (await api.call("DELETE", f"/v1/api-keys/{payer_id}", user)).status == 204
    revoked = await _pay(api, payer, "ok-2", trusted)
    assert revoked.status == 401 and revoked.body["error"]["code"] == "invalid_api_key"
    assert (await api.send("GET", "/v1/me", payer))[0] == 401
    events = [e["event"] for e in (await api.call("GET", "/v1/api-keys", user)).body["events"]]
    assert "revoked" in events and "payment" in events and "payee_trusted" in events
    assert len(await _paid(pool, user)) == 1
    assert await check_invariants(pool, [user.id]) == []


async def test_free_plan_cannot_make_a_key_and_a_pay_key_needs_the_pin(
    api: Api, make_api_user: MakeApiUser
) -> None:
    free = await make_api_user(plan="free", pin=PIN)
    reply = await api.call("POST", "/v1/api-keys", free, json={"name": "x", "scopes": ["read"]})
    assert reply.status == 403 and reply.body["error"]["code"] == "plan_required"

    pro = await make_api_user(plan="pro", pin=PIN)
    no_pin = await api.call("POST", "/v1/api-keys", pro, json={"name": "x", "scopes": ["pay"]})
    assert no_pin.status == 403 and no_pin.body["error"]["code"] == "pin_required"
    wrong = await api.call("POST", "/v1/api-keys", pro, json={"name": "x", "scopes": ["pay"], "pin": "9157"})
    assert wrong.status == 403 and wrong.body["error"]["code"] == "wrong_pin"
    bad_payee = await api.call(
        "POST", "/v1/payees", pro, json={"phone": fresh_phone(), "name": "x", "pin": "9157"}
    )
    assert bad_payee.status == 403
    assert (await api.call("GET", "/v1/api-keys", pro)).body["items"] == []
    assert (await api.call("GET", "/v1/payees", pro)).body["items"] == []


async def test_a_key_cannot_manage_keys_and_a_missing_idempotency_key_is_refused(
    api: Api, make_api_user: MakeApiUser
) -> None:
    user = await make_api_user(plan="pro", pin=PIN)
    key = await _key(api, user, ["read", "pay"], pin=PIN)
    status, _, text = await api.send("POST", "/v1/api-keys", key, json={"name": "y", "scopes": ["read"]})
    assert status == 403 and "api_key_not_allowed" in text
    phone = await _payee(api, user)
    status, _, text = await api.send("POST", "/v1/payments", key, json={"phone": phone, "amount": "10"})
    assert status == 400 and "idempotency_key_required" in text
    bad = await _pay(api, key, "neg", phone, amount="-5")
    assert bad.status == 400 and bad.body["error"]["code"] == "invalid_amount"


async def test_invariants_hold_after_mixed_api_payments_under_concurrency(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    users = [await make_api_user(balance="3000.00", plan="pro", pin=PIN) for _ in range(3)]
    keys = [await _key(api, u, ["pay"], pin=PIN, daily_limit="1000") for u in users]
    phones = [await _payee(api, u) for u in users]
    calls = []
    for i, (key, phone) in enumerate(zip(keys, phones, strict=True)):
        for n in range(8):  # 8 x 150 passes the key's daily limit of 1,000 after 6
            calls.append(_pay(api, key, f"{i}-{n % 5}" if n < 5 else f"{i}-x{n}", phone))
        calls.append(_pay(api, key, f"{i}-s", fresh_phone()))
    replies = await asyncio.gather(*calls)
    codes = {r.body["error"]["code"] for r in replies if r.status != 201}
    assert codes <= {"payee_not_trusted", "api_key_daily_limit"}, codes
    for user in users:
        paid = await _paid(pool, user)
        assert sum(p["amount"] for p in paid) <= Decimal("1000")
        assert len(paid) == 6  # 5 distinct idempotency keys + 3 more, 6 within the limit
    assert await check_invariants(pool, [u.id for u in users]) == []
