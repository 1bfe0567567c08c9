"""PINs an attacker guesses first are refused when set through the app."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from .conftest import Client


@pytest.mark.parametrize(
    "pin", ["0000", "1234", "123456", "9876", "1212", "121212", "123123", "4545", "909090", "987987"]
)
async def test_an_easily_guessed_pin_is_refused(
    client: Client, make_user: Any, db: asyncpg.Pool, pin: str
) -> None:
    user = await make_user()
    r = await client.call("PUT", "/v1/me/pin", user, json_body={"pin": pin})
    assert (r.status, r.body["error"]["code"]) == (400, "weak_pin"), r.body
    assert await db.fetchval("SELECT pin_hash FROM profiles WHERE id = $1", user.id) is None


@pytest.mark.parametrize("pin", ["7392", "5820", "120938", "1213", "2580"])
async def test_an_ordinary_pin_is_set(client: Client, make_user: Any, pin: str) -> None:
    """Set, and it is the PIN the user chose: the app shows a PIN is set, and changing it takes that PIN
    as the current one (another is refused)."""
    user = await make_user()
    r = await client.call("PUT", "/v1/me/pin", user, json_body={"pin": pin})
    assert (r.status, r.body) == (200, {"pin_set": True, "message": "PIN set"}), r.body
    me = await client.call("GET", "/v1/me", user)
    assert me.status == 200 and me.body["pin_set"] is True, me.body
    other = "8461" if pin != "8461" else "8462"
    wrong = await client.call("PUT", "/v1/me/pin", user, json_body={"pin": "4826", "current_pin": other})
    assert (wrong.status, wrong.body["error"]["code"]) == (403, "wrong_pin"), wrong.body
    right = await client.call("PUT", "/v1/me/pin", user, json_body={"pin": "4826", "current_pin": pin})
    assert (right.status, right.body) == (200, {"pin_set": True, "message": "PIN changed"}), right.body
