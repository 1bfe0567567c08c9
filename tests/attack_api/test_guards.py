"""Attacks on API keys, trusted payees and idempotent payments (issue 23) that did not break them, kept as
guards: an outsider (no account, a forged, revoked or query-string key), a free or downgraded plan, a holder
of a legitimate key trying to do more than it allows, header and amount tricks, and 20 to 50 parallel
requests. The real `ongea-pesa serve` on its own PostgreSQL; nothing is mocked."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.app_api.conftest import User
from tests.attack_api.conftest import PIN, KeyClient, new_idem
from tests.ledger.conftest import fresh_phone
from voice_server.auth import mint_user_token

MakeUser = Callable[..., Awaitable[User]]


async def _paid(db: asyncpg.Pool, user: User) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT id, amount, status, api_key_id FROM transactions"
        " WHERE user_id = $1 AND status IN ('processing', 'completed')",
        user.id,
    )
    return rows


async def test_an_outsider_gets_nothing_with_any_credential_but_a_live_key(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    owner = await make_user(plan="pro", pin=PIN)
    key = await keys.key(owner, ["read", "pay"])
    phone = await keys.payee(owner)
    revoked = await keys.key(owner, ["read", "pay"])
    revoked_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE key_hash = $1", hashlib.sha256(revoked.encode()).hexdigest()
    )
    assert (await keys.call("DELETE", f"/v1/api-keys/{revoked_id}", owner.token))[0] == 204
    forged_jwt = mint_user_token("not-the-server-secret-" + "x" * 24, owner.id, ttl_seconds=600)
    bearers = {
        "none": None,
        "forged key": "op_live_" + uuid.uuid4().hex + uuid.uuid4().hex,
        "bare prefix": "op_live_",
        "the key's prefix only": key[:12],
        "key with a letter changed": key[:-1] + ("A" if key[-1] != "A" else "B"),
        "key in upper case": key.upper(),
        "revoked key": revoked,
        "JWT signed with another secret": forged_jwt,
    }
    for what, bearer in bearers.items():
        for method, path in (("GET", "/v1/me"), ("GET", "/v1/payees"), ("POST", "/v1/payments")):
            status, body, _ = await keys.call(
                method,
                path,
                bearer,
                body={"phone": phone, "amount": "100"} if method == "POST" else None,
                headers={"Idempotency-Key": new_idem()},
            )
            assert status == 401, (what, path, status, body)
            assert str(owner.id) not in json.dumps(body) and phone not in json.dumps(body), (what, body)
    # A key is taken from the Authorization or xi-api-key header only, never from the query string (where
    # proxies and browsers log it).
    for query in (f"api_key={key}", f"key={key}", f"access_token={key}"):
        status, body, _ = await keys.call("GET", f"/v1/me?{query}")
        assert status == 401, (query, body)
    assert (await keys.call("GET", "/v1/me", headers={"xi-api-key": key}))[0] == 200
    assert await _paid(db, owner) == []


async def test_a_key_reaches_no_route_that_changes_the_account(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    """A leaked key (even one that pays) cannot make keys, trust payees, revoke, start a voice session, set
    the PIN, top up, change the profile or read a transcript: only reads and POST /v1/payments."""
    owner = await make_user(plan="business", pin=PIN)
    key = await keys.key(owner, ["read", "pay"])
    own_id = await db.fetchval("SELECT id FROM api_keys WHERE user_id = $1", owner.id)
    attempts = [
        ("POST", "/v1/api-keys", {"name": "mine", "scopes": ["read", "pay"], "pin": PIN}),
        ("GET", "/v1/api-keys", None),
        ("DELETE", f"/v1/api-keys/{own_id}", None),
        ("POST", "/v1/payees", {"phone": fresh_phone(), "name": "Me", "pin": PIN}),
        ("POST", "/v1/sessions", {}),
        ("GET", "/v1/convai/conversation/get-signed-url?agent_id=x", None),
        ("GET", "/v1/sessions/vs_x/transcript", None),
        ("PATCH", "/v1/me", {"biometric_enabled": True}),
        ("POST", "/v1/me/pin", {"pin": "1593", "current_pin": PIN}),
        ("POST", "/v1/topups", {"amount": 500}),
        ("POST", "/v1/contacts", {"name": "Mallory", "phone": fresh_phone()}),
        ("GET", "/v1/events", None),
        ("GET", "/", None),
    ]
    for method, path, body in attempts:
        status, answer, _ = await keys.call(method, path, key, body=body)
        assert status == 403 and answer["error"]["code"] == "api_key_not_allowed", (method, path, answer)
    live = await db.fetchrow(
        "SELECT count(*) AS n, bool_and(revoked_at IS NULL) AS live FROM api_keys WHERE user_id = $1",
        owner.id,
    )
    assert (live["n"], live["live"]) == (1, True)
    assert await db.fetchval("SELECT count(*) FROM trusted_payees WHERE user_id = $1", owner.id) == 0
    assert await db.fetchval("SELECT count(*) FROM voice_sessions WHERE user_id = $1", owner.id) == 0


async def test_a_read_key_never_pays_and_a_pay_key_pays_only_its_owners_trusted_payees(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    owner = await make_user(plan="pro", pin=PIN)
    other = await make_user(plan="pro", pin=PIN)
    reader = await keys.key(owner, ["read"])
    payer = await keys.key(owner, ["pay"])
    mine = await keys.payee(owner)
    theirs = await keys.payee(other)  # trusted by another user only
    status, body, _ = await keys.pay(reader, new_idem(), mine)
    assert status == 403 and body["error"]["code"] == "insufficient_scope", body
    for phone in (theirs, fresh_phone(), other.phone):
        status, body, _ = await keys.pay(payer, new_idem(), phone)
        assert status == 403 and body["error"]["code"] == "payee_not_trusted", (phone, body)
    # A payee removed (with the user's token) is no longer paid.
    payee_id = await db.fetchval("SELECT id FROM trusted_payees WHERE user_id = $1", owner.id)
    assert (await keys.call("DELETE", f"/v1/payees/{payee_id}", owner.token))[0] == 204
    status, body, _ = await keys.pay(payer, new_idem(), mine)
    assert status == 403 and body["error"]["code"] == "payee_not_trusted", body
    # Another user's payee id cannot be removed by them, nor their key revoked (404, nothing changes).
    other_payee = await db.fetchval("SELECT id FROM trusted_payees WHERE user_id = $1", other.id)
    assert (await keys.call("DELETE", f"/v1/payees/{other_payee}", owner.token))[0] == 404
    other_key = await keys.key(other, ["read"])
    other_key_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE key_hash = $1", hashlib.sha256(other_key.encode()).hexdigest()
    )
    assert (await keys.call("DELETE", f"/v1/api-keys/{other_key_id}", owner.token))[0] == 404
    assert (await keys.call("GET", "/v1/me", other_key))[0] == 200
    assert await _paid(db, owner) == [] and await _paid(db, other) == []


async def test_trusting_a_payee_needs_the_right_pin_and_parallel_guesses_get_five_tries(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    thief = await make_user(plan="pro", pin=PIN)  # the thief holds the user token, not the PIN
    phone = fresh_phone()
    no_pin = await keys.call("POST", "/v1/payees", thief.token, body={"phone": phone, "name": "Me"})
    assert no_pin[0] == 400, no_pin
    no_pin_key = await keys.call("POST", "/v1/api-keys", thief.token, body={"name": "k", "scopes": ["pay"]})
    assert no_pin_key[0] == 403 and no_pin_key[1]["error"]["code"] == "pin_required", no_pin_key
    guesses = [f"{n:04d}" for n in range(1000, 1020) if f"{n:04d}" != PIN]
    replies = await asyncio.gather(
        *(
            keys.call("POST", "/v1/payees", thief.token, body={"phone": phone, "name": "Me", "pin": g})
            for g in guesses
        )
    )
    codes = [r[1]["error"]["code"] for r in replies]
    assert codes.count("wrong_pin") == 4 and set(codes) == {"wrong_pin", "pin_locked"}, codes
    # Locked: even the right PIN does nothing now.
    right = await keys.call(
        "POST", "/v1/payees", thief.token, body={"phone": phone, "name": "Me", "pin": PIN}
    )
    assert right[0] == 423 and right[1]["error"]["code"] == "pin_locked", right
    assert await db.fetchval("SELECT count(*) FROM trusted_payees WHERE user_id = $1", thief.id) == 0


@pytest.mark.parametrize(
    "idem",
    ["", " ", "x" * 256, "a\tb"],
    ids=["empty", "blank", "256 characters", "tab"],
)
async def test_a_bad_idempotency_key_is_a_400_and_pays_nothing(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool, idem: str
) -> None:
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["pay"])
    phone = await keys.payee(user)
    status, body, _ = await keys.pay(key, idem, phone)
    assert status == 400 and body["error"]["code"] == "idempotency_key_required", (idem, body)
    status, body, _ = await keys.pay(key, "x" * 255, phone)  # the longest allowed
    assert status == 201, body
    assert len(await _paid(db, user)) == 1


async def _raw_payment(base: str, key: str, idem: bytes, phone: str) -> bytes:
    """One POST /v1/payments written by hand: headers of bytes no HTTP client would send."""
    where = urlsplit(base)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    body = json.dumps({"phone": phone, "amount": "100"}).encode()
    writer.write(
        b"POST /v1/payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
        b"Idempotency-Key: " + idem + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_unicode_and_invalid_bytes_in_the_idempotency_key_are_never_a_500(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["pay"])
    phone = await keys.payee(user)
    utf8 = "malipo-☃-ключ".encode()
    first = await _raw_payment(keys.base, key, utf8, phone)
    again = await _raw_payment(keys.base, key, utf8, phone)
    assert first.startswith(b"HTTP/1.1 201"), first
    assert again.startswith(b"HTTP/1.1 201") and b"Idempotent-Replayed: true" in again, again
    for bad in (b"\xff\xfe\xfd", b"ok\x80"):
        answer = await _raw_payment(keys.base, key, bad, phone)
        assert answer.split(b" ")[1][:1] == b"4", answer  # a 4xx, whatever the parser makes of it
    assert len(await _paid(db, user)) == 1


@pytest.mark.parametrize(
    "amount",
    [
        "-5",
        "0",
        "0.50",
        "10.5",
        "1e400",
        "250001",
        "NaN",
        "Infinity",
        "",
        "ten",
        True,
        None,
        [100],
        {"a": 1},
        10**30,
    ],
)
async def test_a_bad_amount_is_a_400_pays_nothing_and_spends_no_idempotency_key(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool, amount: object
) -> None:
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["pay"])
    phone = await keys.payee(user)
    idem = new_idem()
    status, body, _ = await keys.pay(key, idem, phone, amount)
    assert status == 400, (amount, body)
    assert await _paid(db, user) == []
    status, body, _ = await keys.pay(key, idem, phone, "100")
    assert status == 201, body  # the key was not spent on the refused body


async def test_equal_amounts_written_differently_are_one_request(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    """ "1e3", 1000, "1000.00" and the phone in another format are the same body: a replay, not a 409."""
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["pay"])
    phone = await keys.payee(user)
    idem = new_idem()
    first = await keys.pay(key, idem, phone, "1e3")
    assert first[0] == 201 and first[1]["amount"] == "1000.00", first
    for amount, number in ((1000, phone), ("1000.00", "0" + phone[3:]), ("1000", "+" + phone)):
        again = await keys.pay(key, idem, number, amount)
        assert again[0] == 201 and again[1] == first[1] and again[2].get("Idempotent-Replayed") == "true"
    assert len(await _paid(db, user)) == 1


async def test_fifty_parallel_requests_with_one_key_and_two_bodies_pay_once(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    user = await make_user(balance="5000.00", plan="pro", pin=PIN)
    key = await keys.key(user, ["pay"])
    phone = await keys.payee(user)
    idem = new_idem()
    replies = await asyncio.gather(
        *(keys.pay(key, idem, phone, "100" if n % 2 else "200") for n in range(50))
    )
    paid = await _paid(db, user)
    assert len(paid) == 1, paid
    won = str(paid[0]["amount"].to_integral_value())
    for n, (status, body, _) in enumerate(replies):
        asked = "100" if n % 2 else "200"
        if asked == won:
            assert status == 201 and body["transaction_id"] == str(paid[0]["id"]), body
        else:
            assert status == 409 and body["error"]["code"] == "idempotency_key_reused", body


async def test_an_idempotency_key_belongs_to_its_user_and_is_shared_by_their_keys(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    alice = await make_user(plan="pro", pin=PIN)
    bob = await make_user(plan="pro", pin=PIN)
    a_key, a_key2, b_key = (
        await keys.key(alice, ["pay"]),
        await keys.key(alice, ["pay"]),
        await keys.key(bob, ["pay"]),
    )
    a_phone, b_phone = await keys.payee(alice), await keys.payee(bob)
    idem = "order-42"
    a = await keys.pay(a_key, idem, a_phone)
    b = await keys.pay(b_key, idem, b_phone)  # Bob's own payment, not Alice's answer
    assert a[0] == b[0] == 201 and a[1]["transaction_id"] != b[1]["transaction_id"]
    assert b[1]["phone"] == b_phone and b[2].get("Idempotent-Replayed") is None, b
    # Alice's second key retrying her request replays it; with another body it is a 409.
    replay = await keys.pay(a_key2, idem, a_phone)
    assert replay[0] == 201 and replay[1] == a[1], replay
    other = await keys.pay(a_key2, idem, a_phone, "101")
    assert other[0] == 409, other
    # Bob cannot learn Alice's answer with her key's body either.
    probe = await keys.pay(b_key, idem, a_phone)
    assert probe[0] == 409 and a[1]["transaction_id"] not in json.dumps(probe[1]), probe
    assert len(await _paid(db, alice)) == 1 and len(await _paid(db, bob)) == 1


async def test_the_daily_limit_holds_under_parallel_payments(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    user = await make_user(balance="20000.00", plan="business", pin=PIN)
    key = await keys.key(user, ["pay"], daily_limit="1000")
    phone = await keys.payee(user)
    replies = await asyncio.gather(*(keys.pay(key, new_idem(), phone, "300") for _ in range(20)))
    codes = sorted(r[1].get("error", {}).get("code", "paid") for r in replies)
    assert codes.count("paid") == 3 and set(codes) == {"paid", "api_key_daily_limit"}, codes
    paid = await _paid(db, user)
    assert sum(p["amount"] for p in paid) == Decimal("900.00")
    # A second key of the same user has its own limit; the first one stays shut.
    second = await keys.key(user, ["pay"], daily_limit="300")
    assert (await keys.pay(second, new_idem(), phone, "300"))[0] == 201
    assert (await keys.pay(second, new_idem(), phone, "100"))[1]["error"]["code"] == "api_key_daily_limit"
    assert (await keys.pay(key, new_idem(), phone, "100"))[0] == 201  # 900 + 100 = its 1,000
    assert (await keys.pay(key, new_idem(), phone, "100"))[1]["error"]["code"] == "api_key_daily_limit"
    assert sum(p["amount"] for p in await _paid(db, user)) == Decimal("1300.00")


async def test_the_rate_limit_holds_under_parallel_requests(keys: KeyClient, make_user: MakeUser) -> None:
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["read"], rate_limit_per_minute=5)
    if time.time() % 60 > 40:  # not across a minute's boundary, where the window starts again
        await asyncio.sleep(61 - time.time() % 60)
    replies = await asyncio.gather(*(keys.call("GET", "/v1/me", key) for _ in range(30)))
    statuses = sorted(r[0] for r in replies)
    assert statuses == [200] * 5 + [429] * 25, statuses
    assert {r[1]["error"]["code"] for r in replies if r[0] == 429} == {"rate_limited"}


async def test_a_key_stops_at_once_when_the_plan_ends(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool
) -> None:
    user = await make_user(plan="pro", pin=PIN)
    key = await keys.key(user, ["read", "pay"])
    phone = await keys.payee(user)
    assert (await keys.pay(key, new_idem(), phone))[0] == 201
    # The subscription is downgraded (cancelled); then, separately, one that lapses at its period's end.
    await db.execute("UPDATE subscriptions SET status = 'cancelled' WHERE user_id = $1", user.id)
    for method, path in (("GET", "/v1/me"), ("POST", "/v1/payments")):
        status, body, _ = await keys.call(
            method, path, key, body={"phone": phone, "amount": "100"}, headers={"Idempotency-Key": new_idem()}
        )
        assert status == 403 and body["error"]["code"] == "plan_required", (path, body)
    status, body, _ = await keys.call(
        "POST", "/v1/api-keys", user.token, body={"name": "x", "scopes": ["read"]}
    )
    assert status == 403 and body["error"]["code"] == "plan_required"
    assert len(await _paid(db, user)) == 1


@pytest.mark.parametrize(
    "name",
    [
        "'); DROP TABLE api_keys; --",
        "x' OR '1'='1",
        "$$; TRUNCATE transactions; $$",
        "<script>alert(1)</script>",
    ],
)
async def test_sql_and_markup_in_names_are_kept_as_text(
    keys: KeyClient, make_user: MakeUser, db: asyncpg.Pool, name: str
) -> None:
    user = await make_user(plan="pro", pin=PIN)
    status, body, _ = await keys.call(
        "POST", "/v1/api-keys", user.token, body={"name": name, "scopes": ["read"]}
    )
    assert status == 201 and body["name"] == name, body
    phone = fresh_phone()
    status, body, _ = await keys.call(
        "POST", "/v1/payees", user.token, body={"phone": phone, "name": name, "pin": PIN}
    )
    assert status == 201 and body["name"] == name, body
    assert await db.fetchval("SELECT name FROM trusted_payees WHERE user_id = $1", user.id) == name
    assert await db.fetchval("SELECT count(*) FROM api_keys") > 0


# As PostgREST runs SQL for a request on Supabase (tests/attack's supabase_pool: migrated on top of
# Supabase's default grants, which give the API roles every new function).
FUNCTIONS = [
    "api_access_allowed(uuid, timestamptz)",
    "api_key_create(uuid, text, text[], text, text, numeric, integer, timestamptz)",
    "api_key_revoke(uuid, uuid, timestamptz)",
    "api_key_use(text, text, timestamptz)",
    "trusted_payee_confirm(uuid, text, text, timestamptz)",
    "trusted_payee_remove(uuid, uuid, timestamptz)",
    "api_pay_answer(uuid, text, integer, jsonb)",
    "api_pay(uuid, text, text, text, numeric, text, timestamptz)",
    "idempotency_keys_prune(timestamptz)",
]


async def test_supabase_roles_may_call_no_api_key_function_nor_read_a_hash(
    supabase_pool: asyncpg.Pool,
) -> None:
    held = [
        f"{role} {f}"
        for role in ("anon", "authenticated")
        for f in FUNCTIONS
        if await supabase_pool.fetchval(
            "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, "public." + f
        )
    ]
    assert held == []
    for role in ("anon", "authenticated"):
        assert not await supabase_pool.fetchval(
            "SELECT has_column_privilege($1, 'public.api_keys', 'key_hash', 'SELECT')", role
        )
        for table in ("idempotency_keys", "api_key_events", "trusted_payees", "api_keys"):
            for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                assert not await supabase_pool.fetchval(
                    "SELECT has_table_privilege($1, $2, $3)", role, "public." + table, privilege
                ), (role, table, privilege)
    assert not await supabase_pool.fetchval(
        "SELECT has_table_privilege('authenticated', 'public.idempotency_keys', 'SELECT')"
    )
