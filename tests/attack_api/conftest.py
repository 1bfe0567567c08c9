"""Fixtures of the outside attack on API keys, trusted payees and idempotent payments (issue 23): the real
`ongea-pesa serve` of tests/attack on its own database, real HTTP, and a Supabase-granted database for SQL
run as PostgREST runs it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.app_api.conftest import User
from tests.attack.conftest import (  # noqa: F401  (fixtures used by these tests)
    attack_url,
    client,
    db,
    make_user,
    served,
    supabase_pool,
    supabase_url,
)
from tests.ledger.conftest import fresh_phone

PIN = "4826"


class KeyClient:
    """Raw HTTP to the served process as a till system speaks it: a bearer (user token or `op_live_` key)
    and any headers, the answer as (status, JSON body or None, headers)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def call(
        self,
        method: str,
        path: str,
        bearer: str | None = None,
        *,
        body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        sent = dict(headers or {})
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        if body is not None:
            data = json.dumps(body)
            sent.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.base + path, data=data, headers=sent) as r:
            text = await r.text()
            parsed = json.loads(text) if text and r.content_type == "application/json" else text or None
            return r.status, parsed, dict(r.headers)

    async def key(self, user: User, scopes: list[str], **extra: Any) -> str:
        """A new key of `user` (the PIN sent for a `pay` key unless `extra` says otherwise)."""
        body = {"name": "till", "scopes": scopes, **extra}
        if "pay" in scopes:
            body.setdefault("pin", PIN)
        status, answer, _ = await self.call("POST", "/v1/api-keys", user.token, body=body)
        assert status == 201, answer
        token: str = answer["key"]
        return token

    async def payee(self, user: User, phone: str | None = None, name: str = "Supplier") -> str:
        phone = phone or fresh_phone()
        status, answer, _ = await self.call(
            "POST", "/v1/payees", user.token, body={"phone": phone, "name": name, "pin": PIN}
        )
        assert status == 201, answer
        return phone

    async def pay(
        self, key: str, idem: str | None, phone: str, amount: Any = "100", **extra: Any
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {} if idem is None else {"Idempotency-Key": idem}
        return await self.call(
            "POST", "/v1/payments", key, body={"phone": phone, "amount": amount, **extra}, headers=headers
        )


def new_idem() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def keys(served: str) -> AsyncIterator[KeyClient]:  # noqa: F811  (the fixture above)
    async with aiohttp.ClientSession() as http:
        yield KeyClient(http, served)
