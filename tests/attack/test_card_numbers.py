"""Card numbers never enter the system (PCI DSS scope): not hidden in another field of the API, and not
written straight into payment_methods as a user through PostgREST, where no API check runs."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from ledger.reads import as_user

from .conftest import Client

VISA = "4242424242424242"  # Stripe's test Visa: passes the Luhn check


@pytest.mark.parametrize(
    "token",
    ["tok_4242_4242_4242_4242", "tok_4242-4242-4242-4242", "pm_4242.4242.4242.4242", "A" + VISA],
)
async def test_a_card_number_hidden_in_the_token_is_refused(
    client: Client, make_user: Any, db: asyncpg.Pool, token: str
) -> None:
    user = await make_user()
    body = {"type": "card", "token": token, "last4": "4242", "brand": "visa"}
    r = await client.call("POST", "/v1/payment-methods", user, json_body=body)
    assert r.status == 400, r.body
    assert await db.fetchval("SELECT count(*) FROM payment_methods WHERE user_id = $1", user.id) == 0


async def test_a_real_provider_token_is_still_saved(client: Client, make_user: Any) -> None:
    user = await make_user()
    body = {"type": "card", "token": "pm_1NabcDEF2ghi3JKL", "last4": "4242", "brand": "visa"}
    r = await client.call("POST", "/v1/payment-methods", user, json_body=body)
    assert (r.status, r.body["card_last4"]) == (201, "4242"), r.body


@pytest.mark.parametrize(
    ("columns", "values"),
    [
        ("method_type, card_token, card_last4, card_brand", ["card", VISA, "4242", "visa"]),
        ("method_type, card_token, card_last4, card_brand", ["card", "tok_abcdef", "4242", f"visa {VISA}"]),
        ("method_type, mpesa_number, card_brand", ["mpesa", "254712345678", VISA]),
        ("method_type, mpesa_number, bank_name", ["mpesa", "254712345678", f"card {VISA} exp 12/29"]),
        (
            "method_type, bank_code, bank_account_number, bank_name",
            ["bank", "68", "0123456789", "4242 4242 4242 4242"],
        ),
    ],
)
async def test_a_user_writing_sql_cannot_store_a_card_number(
    db: asyncpg.Pool, make_user: Any, columns: str, values: list[str]
) -> None:
    user = await make_user()
    slots = ", ".join(f"${i}" for i in range(2, len(values) + 2))
    async with as_user(db, user.id, readonly=False) as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                f"INSERT INTO payment_methods (user_id, {columns}) VALUES ($1, {slots})", user.id, *values
            )
    assert await db.fetchval("SELECT count(*) FROM payment_methods WHERE user_id = $1", user.id) == 0
