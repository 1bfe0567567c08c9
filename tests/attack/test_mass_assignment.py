"""Fields a user may not set, smuggled into the bodies that do take extra fields (an address book's entries)
or that map to columns: never stored."""

from __future__ import annotations

from typing import Any

import asyncpg

from .conftest import Client


async def test_an_imported_entry_cannot_set_owner_or_totals(
    client: Client, make_user: Any, db: asyncpg.Pool
) -> None:
    a, b = await make_user(), await make_user()
    entry = {
        "name": "Mama",
        "phone": "0711000009",
        "user_id": str(a.id),
        "id": "00000000-0000-0000-0000-000000000001",
        "transaction_count": 1000,
        "total_sent": "999999",
        "favorite": True,
        "default_amount": "250000",
    }
    r = await client.call("POST", "/v1/contacts:import", b, json_body={"contacts": [entry]})
    assert r.status == 201, r.body
    row = await db.fetchrow(
        "SELECT id, user_id, transaction_count, total_sent, favorite, default_amount FROM contacts"
        " WHERE phone_number = '254711000009'"
    )
    assert row["user_id"] == b.id and str(row["id"]) != entry["id"]
    assert (row["transaction_count"], str(row["total_sent"]), row["favorite"], row["default_amount"]) == (
        0,
        "0.00",
        False,
        None,
    )


async def test_money_and_lockout_fields_are_refused_by_name(
    client: Client, make_user: Any, db: asyncpg.Pool
) -> None:
    user = await make_user("10.00", pin="7392")
    for field, value in [
        ("wallet_balance", "1000000"),
        ("held_balance", "0"),
        ("pin_hash", "x"),
        ("pin_failed_attempts", 0),
        ("pin_locked_until", None),
        ("phone_number", "254700000001"),
        ("mpesa_number", "254700000001"),
        ("id", "00000000-0000-0000-0000-000000000001"),
    ]:
        r = await client.call("PATCH", "/v1/me", user, json_body={"biometric_enabled": True, field: value})
        assert (r.status, r.body["error"]["code"]) == (400, "unknown_field"), field
    row = await db.fetchrow("SELECT wallet_balance, biometric_enabled FROM profiles WHERE id = $1", user.id)
    assert (str(row[0]), row[1]) == ("10.00", False)
