"""`GET/PATCH /v1/me` and `PUT /v1/me/pin` as the app uses them, and as an attacker would."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from decimal import Decimal

import asyncpg
import jwt
import pytest

from ledger.models import ProposalRequest
from ledger.pins import check_user_pin, verify_pin
from ledger.service import Ledger
from voice_server.auth import mint_user_token

from .conftest import JWT_SECRET, Api, MakeApiUser


async def test_profile_shows_balances_plan_and_usage(
    api: Api, make_api_user: MakeApiUser, ledger: Ledger
) -> None:
    user = await make_api_user("5000.00", plan="basic")
    me = await api.call("GET", "/v1/me", user)
    assert me.status == 200
    assert me.body["phone"] == user.phone and me.body["id"] == str(user.id)
    assert (me.body["wallet_balance"], me.body["available_balance"]) == ("5000.00", "5000.00")
    assert me.body["plan"]["plan"] == "basic" and me.body["plan"]["transaction_fee_percentage"] == "0.0100"
    assert me.body["usage"] == {**me.body["usage"], "transactions": 0, "limit": 50, "remaining": 50}
    assert me.body["pin_set"] is False and "pin_hash" not in me.body

    paid = await ledger.propose(
        user.id, ProposalRequest.build(type="send_phone", amount="100", phone="0711222333")
    )
    await ledger.confirm(paid.id, user.id, 1, voice_verified=True)
    await ledger.propose(user.id, ProposalRequest.build(type="buy_goods_till", amount="50", till="54321"))
    me = await api.call("GET", "/v1/me", user)
    # 5000 - 100 - 1.00 fee; the pending 50 + 0.50 is held, not spent.
    assert (me.body["wallet_balance"], me.body["held_balance"], me.body["available_balance"]) == (
        "4899.00",
        "50.50",
        "4848.50",
    )
    assert (me.body["usage"]["transactions"], me.body["usage"]["remaining"]) == (1, 49)


async def test_patch_changes_preferences_only(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    r = await api.call(
        "PATCH",
        "/v1/me",
        user,
        json={
            "mpesa_auto_topup": True,
            "mpesa_auto_topup_threshold": "200",
            "mpesa_auto_topup_amount": 1000,
            "biometric_enabled": True,
            "default_payment_method": "mpesa",
        },
    )
    assert r.status == 200, r.body
    assert r.body["mpesa_auto_topup"] is True
    assert (r.body["mpesa_auto_topup_threshold"], r.body["mpesa_auto_topup_amount"]) == ("200.00", "1000.00")
    assert r.body["biometric_enabled"] is True and r.body["default_payment_method"] == "mpesa"
    assert (await api.call("GET", "/v1/me", user)).body["mpesa_auto_topup_amount"] == "1000.00"


@pytest.mark.parametrize(
    "body",
    [
        {"wallet_balance": "1000000"},
        {"held_balance": 0},
        {"pin_hash": "$argon2id$v=19$m=65536,t=3,p=4$x$y"},
        {"pin_failed_attempts": 0},
        {"phone_number": "254700000001"},
        {"mpesa_number": "254700000001"},
        {"id": "00000000-0000-0000-0000-000000000000"},
        {"biometric_enabled": True, "wallet_balance": "1000000"},
    ],
)
async def test_patch_refuses_mass_assignment_and_changes_nothing(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool, body: dict[str, object]
) -> None:
    user = await make_api_user("300.00", pin="2580")
    before = await pool.fetchrow("SELECT * FROM profiles WHERE id = $1", user.id)
    r = await api.call("PATCH", "/v1/me", user, json=body)
    assert (r.status, r.body["error"]["code"]) == (400, "unknown_field")
    after = await pool.fetchrow("SELECT * FROM profiles WHERE id = $1", user.id)
    assert dict(after) == dict(before)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mpesa_auto_topup_amount": "99.50"}, "invalid_amount"),
        ({"mpesa_auto_topup_amount": 0}, "invalid_amount"),
        ({"mpesa_auto_topup_amount": "-5"}, "invalid_amount"),
        ({"mpesa_auto_topup_amount": 1e3}, "invalid_amount"),  # a JSON float is read as a decimal: 1000.0 ok?
        ({"mpesa_auto_topup_threshold": "1e400"}, "invalid_amount"),
        ({"mpesa_auto_topup": "yes"}, "invalid_request"),
        ({"default_payment_method": "bitcoin"}, "invalid_request"),
    ],
)
async def test_patch_refuses_bad_values(
    api: Api, make_api_user: MakeApiUser, body: dict[str, object], code: str
) -> None:
    user = await make_api_user()
    r = await api.call("PATCH", "/v1/me", user, json=body)
    if body == {"mpesa_auto_topup_amount": 1e3}:
        assert r.status == 200 and r.body["mpesa_auto_topup_amount"] == "1000.00"
        return
    assert (r.status, r.body["error"]["code"]) == (400, code), r.body


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "{" * 5000 + "}" * 5000, '{"biometric_enabled": true'])
async def test_malformed_bodies_are_400(api: Api, make_api_user: MakeApiUser, raw: str) -> None:
    user = await make_api_user()
    r = await api.call("PATCH", "/v1/me", user, data=raw, headers={"Content-Type": "application/json"})
    assert (r.status, r.body["error"]["code"]) == (400, "invalid_json")


async def test_every_route_needs_a_valid_token(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    forged = type(user)(user.id, user.phone, user.token[:-4] + "AAAA")
    for method, path in [
        ("GET", "/v1/me"),
        ("PATCH", "/v1/me"),
        ("PUT", "/v1/me/pin"),
        ("GET", "/v1/contacts"),
        ("POST", "/v1/contacts"),
        ("POST", "/v1/contacts:import"),
        ("GET", f"/v1/contacts/{user.id}"),
        ("PATCH", f"/v1/contacts/{user.id}"),
        ("DELETE", "/v1/contacts/not-a-uuid"),
        ("GET", "/v1/transactions"),
        ("GET", f"/v1/transactions/{user.id}"),
        ("GET", "/v1/balance-history"),
        ("GET", f"/v1/topups/{user.id}"),
        ("GET", "/v1/plans"),
        ("POST", "/v1/subscription"),
        ("GET", "/v1/payment-methods"),
        ("POST", "/v1/payment-methods"),
        ("DELETE", f"/v1/payment-methods/{user.id}"),
    ]:
        for who in (None, forged):
            r = await api.call(method, path, who, json={})
            assert (r.status, r.body["error"]["code"]) == (401, "unauthorized"), (method, path)


# ---------------------------------------------------------------------------------------------------------
# PIN
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "code"),
    [
        ("1111", "weak_pin"),
        ("000000", "weak_pin"),
        ("1234", "weak_pin"),
        ("123456", "weak_pin"),
        ("9876", "weak_pin"),
        ("3456", "weak_pin"),
        ("123", "invalid_pin"),
        ("1234567", "invalid_pin"),
        ("12a4", "invalid_pin"),
        ("١٢٣٤٥", "invalid_pin"),  # Arabic-Indic digits are digits to Python, not to a keypad
    ],
)
async def test_weak_or_malformed_pins_are_refused(
    api: Api, make_api_user: MakeApiUser, pin: str, code: str
) -> None:
    user = await make_api_user()
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": pin})
    assert (r.status, r.body["error"]["code"]) == (400, code)
    assert (await api.call("GET", "/v1/me", user)).body["pin_set"] is False


async def test_set_then_change_pin(api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool) -> None:
    user = await make_api_user()
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "2580"})
    assert (r.status, r.body["pin_set"]) == (200, True)
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391"})
    assert (r.status, r.body["error"]["code"]) == (400, "current_pin_required")
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391", "current_pin": "2580"})
    assert r.status == 200, r.body
    stored = await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user.id)
    assert verify_pin(stored, "7391") and not verify_pin(stored, "2580") and "7391" not in stored


async def test_the_first_pin_needs_a_fresh_sign_in(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    """Before: any valid token of a user without a PIN could set one, so a stolen token (an hour old, a week
    old) chose the PIN that unlocks payments past the allowance without a PIN."""
    user = await make_api_user()
    issued = time.time() - 11 * 60  # 11 minutes ago: still valid for most of an hour, but no fresh sign-in
    stolen = dataclasses.replace(
        user, token=mint_user_token(JWT_SECRET, user.id, ttl_seconds=3600, now=issued)
    )
    r = await api.call("PUT", "/v1/me/pin", stolen, json={"pin": "2580"})
    assert (r.status, r.body["error"]["code"]) == (403, "fresh_sign_in_required")
    assert "sign in again" in r.body["error"]["message"]
    assert await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user.id) is None
    assert (await api.call("GET", "/v1/me", stolen)).status == 200  # the token itself still works
    # Signed in just now: the first PIN is set.
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "2580"})
    assert (r.status, r.body["pin_set"]) == (200, True)
    # A change is guarded by the current PIN instead, whatever the token's age.
    r = await api.call("PUT", "/v1/me/pin", stolen, json={"pin": "7391"})
    assert (r.status, r.body["error"]["code"]) == (400, "current_pin_required")
    r = await api.call("PUT", "/v1/me/pin", stolen, json={"pin": "7391", "current_pin": "2580"})
    assert r.status == 200, r.body
    assert verify_pin(await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user.id), "7391")


def supabase_token(user: uuid.UUID, *, signed_in: float) -> str:
    """A token as Supabase issues one at a refresh: a new `iat`, the sign-in's time kept in `amr`."""
    now = int(time.time())
    claims = {
        "sub": str(user),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }
    claims["amr"] = [{"method": "otp", "timestamp": int(signed_in)}]
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


async def test_a_refreshed_token_is_not_a_fresh_sign_in(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    """Supabase issues a new token, with a new `iat`, at every refresh for as long as the session lasts: who
    holds a session's refresh token gets one whenever they like. What counts is when the person signed in,
    which its `amr` keeps."""
    user = await make_api_user()
    refreshed = dataclasses.replace(user, token=supabase_token(user.id, signed_in=time.time() - 3 * 3600))
    r = await api.call("PUT", "/v1/me/pin", refreshed, json={"pin": "2580"})
    assert (r.status, r.body["error"]["code"]) == (403, "fresh_sign_in_required")
    assert await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user.id) is None
    signed_in = dataclasses.replace(user, token=supabase_token(user.id, signed_in=time.time() - 60))
    r = await api.call("PUT", "/v1/me/pin", signed_in, json={"pin": "2580"})
    assert (r.status, r.body["pin_set"]) == (200, True)


async def test_two_first_pins_at_once_are_never_both_set(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    """Before: both were told "PIN set", and the one whose write came first no longer worked."""
    user = await make_api_user()
    pins = ["2580", "7391"]
    replies = await asyncio.gather(*(api.call("PUT", "/v1/me/pin", user, json={"pin": p}) for p in pins))
    assert sorted(r.status for r in replies) == [200, 409], [r.body for r in replies]
    [kept] = [p for p, r in zip(pins, replies, strict=True) if r.status == 200]
    [refused] = [r for r in replies if r.status == 409]
    assert refused.body["error"]["code"] == "pin_already_set"
    assert verify_pin(await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user.id), kept)


async def test_wrong_current_pins_count_towards_the_shared_lockout(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(pin="2580")
    for left in (4, 3, 2, 1):
        r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391", "current_pin": "0000"})
        assert (r.status, r.body["error"]["code"]) == (403, "wrong_pin")
        assert f"{left} more" in r.body["error"]["message"]
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391", "current_pin": "0000"})
    assert (r.status, r.body["error"]["code"]) == (423, "pin_locked")
    assert "until 20" in r.body["error"]["message"] and "UTC" in r.body["error"]["message"]
    # Locked for every channel: even the right PIN cannot change it now, nor pay by voice.
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391", "current_pin": "2580"})
    assert (r.status, r.body["error"]["code"]) == (423, "pin_locked")
    assert (await check_user_pin(pool, user.id, "2580")).outcome == "locked"
    stored = await pool.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user.id)
    assert verify_pin(stored, "2580")
    me = await api.call("GET", "/v1/me", user)
    assert me.body["pin_locked_until"] is not None


async def test_voice_and_app_share_one_count(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user(pin="2580")
    for _ in range(4):
        assert (await check_user_pin(pool, user.id, "1111")).outcome == "wrong"  # four wrong by voice
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391", "current_pin": "9999"})
    assert (r.status, r.body["error"]["code"]) == (423, "pin_locked")  # the fifth, in the app, locks
    assert await pool.fetchval("SELECT pin_failed_attempts FROM profiles WHERE id = $1", user.id) == 5


async def test_a_right_pin_resets_the_count(api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool) -> None:
    user = await make_api_user(pin="2580")
    await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391", "current_pin": "0000"})
    r = await api.call("PUT", "/v1/me/pin", user, json={"pin": "7391", "current_pin": "2580"})
    assert r.status == 200
    assert await pool.fetchval("SELECT pin_failed_attempts FROM profiles WHERE id = $1", user.id) == 0


async def test_balance_is_a_decimal_string(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user("0.10")
    body = (await api.call("GET", "/v1/me", user)).body
    assert body["wallet_balance"] == "0.10" and Decimal(body["available_balance"]) == Decimal("0.10")
