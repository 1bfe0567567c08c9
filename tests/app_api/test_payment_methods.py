"""`/v1/payment-methods`: M-Pesa numbers, bank accounts from the directory, card tokens; card numbers never
accepted; one default at a time, held by the database."""

from __future__ import annotations

import json

import asyncpg
import pytest

from ledger.reads import as_user
from voice_server.app_api.payment_methods import luhn_ok

from .conftest import Api, MakeApiUser

CARD = {"type": "card", "token": "pm_1NabcDEFghiJKL", "last4": "4242", "brand": "visa"}


async def test_save_list_and_delete(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    mpesa = await api.call(
        "POST", "/v1/payment-methods", user, json={"type": "mpesa", "phone": "0712 345 678"}
    )
    assert mpesa.status == 201, mpesa.body
    assert (mpesa.body["mpesa_number"], mpesa.body["is_default"]) == ("254712345678", True)  # the first one
    bank = await api.call(
        "POST",
        "/v1/payment-methods",
        user,
        json={"type": "bank", "bank_code": "68", "account_number": "0123456789012"},
    )
    assert (bank.status, bank.body["bank_name"], bank.body["is_default"]) == (201, "Equity Bank", False)
    card = await api.call("POST", "/v1/payment-methods", user, json={**CARD, "is_default": True})
    assert card.status == 201 and card.body["card_last4"] == "4242" and "token" not in json.dumps(card.body)
    items = (await api.call("GET", "/v1/payment-methods", user)).body["items"]
    assert [(m["type"], m["is_default"]) for m in items] == [
        ("card", True),
        ("mpesa", False),
        ("bank", False),
    ]
    me = (await api.call("GET", "/v1/me", user)).body
    assert me["default_payment_method_id"] == card.body["id"]
    assert (await api.call("DELETE", f"/v1/payment-methods/{bank.body['id']}", user)).status == 204
    assert len((await api.call("GET", "/v1/payment-methods", user)).body["items"]) == 2
    again = await api.call(
        "POST", "/v1/payment-methods", user, json={"type": "mpesa", "phone": "+254712345678"}
    )
    assert (again.status, again.body["error"]["code"]) == (409, "method_exists")


@pytest.mark.parametrize(
    "body",
    [
        {**CARD, "token": "4242424242424242"},
        {**CARD, "token": "pm_4111111111111111"},
        {**CARD, "number": "4111 1111 1111 1111"},
        {**CARD, "brand": "visa 5555-5555-5555-4444"},
        {"type": "bank", "bank_code": "68", "account_number": "378282246310005"},  # an Amex number
        {"type": "mpesa", "phone": "0712345678", "note": 4012888888881881},
        {
            "type": "card",
            "pan": "6011111111111117",
            "last4": "1117",
            "brand": "discover",
            "token": "tok_x1234",
        },
    ],
)
async def test_anything_like_a_card_number_is_refused(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool, body: dict[str, object]
) -> None:
    user = await make_api_user()
    r = await api.call("POST", "/v1/payment-methods", user, json=body)
    assert (r.status, r.body["error"]["code"]) == (400, "card_number_refused")
    assert await pool.fetchval("SELECT count(*) FROM payment_methods WHERE user_id = $1", user.id) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "bank", "bank_code": "99", "account_number": "12345"}, "unknown_bank"),
        ({"type": "bank", "bank_code": "68", "account_number": "12-34/5"}, "invalid_account"),
        ({"type": "mpesa", "phone": "+1 415 555 2671"}, "invalid_phone"),
        ({"type": "card", "token": "pm_x", "last4": "42", "brand": "visa"}, "invalid_request"),
        ({"type": "paypal", "email": "a@b.c"}, "invalid_request"),
        ({"type": "mpesa", "phone": "0712345678", "is_active": False}, "unknown_field"),
        (
            {"type": "mpesa", "phone": "0712345678", "user_id": "00000000-0000-0000-0000-000000000001"},
            "unknown_field",
        ),
    ],
)
async def test_bad_methods_are_refused(
    api: Api, make_api_user: MakeApiUser, body: dict[str, object], code: str
) -> None:
    user = await make_api_user()
    r = await api.call("POST", "/v1/payment-methods", user, json=body)
    assert (r.status, r.body["error"]["code"]) == (400, code), r.body


async def test_a_kenyan_number_is_not_mistaken_for_a_card(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    # 254700000006 passes the Luhn check and starts with 2 like a Mastercard: it is still a phone number.
    assert luhn_ok("254700000006")
    r = await api.call("POST", "/v1/payment-methods", user, json={"type": "mpesa", "phone": "254700000006"})
    assert r.status == 201, r.body


async def test_one_default_at_a_time_even_in_sql(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user()
    for phone in ("0712000001", "0712000002", "0712000003"):
        r = await api.call(
            "POST", "/v1/payment-methods", user, json={"type": "mpesa", "phone": phone, "is_default": True}
        )
        assert r.status == 201
    defaults = await pool.fetch(
        "SELECT mpesa_number FROM payment_methods WHERE user_id = $1 AND is_default", user.id
    )
    assert [d["mpesa_number"] for d in defaults] == ["254712000003"]
    async with as_user(pool, user.id, readonly=False) as conn:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("UPDATE payment_methods SET is_default = true")


async def test_b_never_sees_or_deletes_a_methods(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    a, b = await make_api_user(), await make_api_user()
    card = (await api.call("POST", "/v1/payment-methods", a, json=CARD)).body
    r = await api.call("DELETE", f"/v1/payment-methods/{card['id']}", b)
    assert (r.status, r.body["error"]["code"]) == (404, "not_found")
    assert (await api.call("GET", "/v1/payment-methods", b)).body["items"] == []
    assert await pool.fetchval("SELECT count(*) FROM payment_methods WHERE id = $1", card["id"]) == 1
    # B setting "its" default does not unset A's.
    await api.call(
        "POST", "/v1/payment-methods", b, json={"type": "mpesa", "phone": "0712000009", "is_default": True}
    )
    assert await pool.fetchval("SELECT is_default FROM payment_methods WHERE id = $1", card["id"]) is True
