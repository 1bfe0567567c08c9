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
    user = await make_user()
    r = await client.call("PUT", "/v1/me/pin", user, json_body={"pin": pin})
    assert r.status == 200, r.body
