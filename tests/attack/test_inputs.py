"""Hostile bodies and queries against every write route of the served process: always a JSON error a
person can read (4xx), never a 500, and nothing stored."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from .conftest import Client

ROUTES = [
    ("PATCH", "/v1/me"),
    ("PUT", "/v1/me/pin"),
    ("POST", "/v1/contacts"),
    ("POST", "/v1/contacts:import"),
    ("POST", "/v1/payment-methods"),
    ("POST", "/v1/subscription"),
]

RAW_BODIES = [
    "",
    "{",
    "null",
    "[]",
    '"text"',
    "1e400",
    "NaN",
    '{"a": NaN}',
    "[" * 100_000 + "]" * 100_000,
    '{"name": "\\ud800", "phone": "0712345678"}',
    '{"contacts": [{"name": "\\ud800\\u0000", "phone": "\\ud800"}]}',
    '{"contacts": {"name": "x"}}',
    b"\xff\xfe{}".decode("latin-1"),
]

AMOUNTS: list[Any] = [
    "-5",
    -5,
    0,
    "0.001",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    1e400,
    "1e-400",
    True,
    [],
    {},
    "  ",
    "5,000",
    "0x10",
    "9" * 5000,
]


@pytest.mark.parametrize("raw", RAW_BODIES, ids=range(len(RAW_BODIES)))
async def test_malformed_bodies(client: Client, make_user: Any, db: asyncpg.Pool, raw: str) -> None:
    user = await make_user()
    for method, path in ROUTES:
        r = await client.call(method, path, user, data=raw.encode("utf-8", "surrogatepass"))
        assert 400 <= r.status < 500 and r.content_type == "application/json", (path, r.status, r.body)
        assert set(r.body) == {"error"}
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 0


@pytest.mark.parametrize("amount", AMOUNTS, ids=range(len(AMOUNTS)))
async def test_bad_amounts_change_nothing(
    client: Client, make_user: Any, db: asyncpg.Pool, amount: Any
) -> None:
    user = await make_user()
    for method, path, body in [
        ("PATCH", "/v1/me", {"mpesa_auto_topup_amount": amount}),
        *([] if amount == 0 else [("PATCH", "/v1/me", {"mpesa_auto_topup_threshold": amount})]),
        ("POST", "/v1/contacts", {"name": "Mama", "phone": "0712345678", "default_amount": amount}),
    ]:
        raw = json.dumps(body, allow_nan=True)
        r = await client.call(method, path, user, data=raw)
        assert r.status == 400 and r.content_type == "application/json", (body, r.status, r.body)
    row = await db.fetchrow(
        "SELECT mpesa_auto_topup_amount, mpesa_auto_topup_threshold FROM profiles WHERE id = $1", user.id
    )
    assert (str(row[0]), str(row[1])) == ("500.00", "100.00")
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 0


async def test_huge_bodies_are_413(client: Client, make_user: Any) -> None:
    user = await make_user()
    big = json.dumps({"name": "x" * (3 * 1024 * 1024), "phone": "0712345678"})
    for method, path in ROUTES:
        r = await client.call(method, path, user, data=big)
        assert r.status == 413 and r.body["error"]["code"] == "request_entity_too_large", (path, r.status)


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


CURSORS = [
    "x",
    "!!!",
    _cursor("9999-12-31T23:59:59.999999-23:59", "00000000-0000-0000-0000-000000000000"),
    _cursor("0001-01-01T00:00:00+23:59", "00000000-0000-0000-0000-000000000000"),
    _cursor("2026-01-01", "' OR 1=1 --"),
    _cursor("2026-01-01T00:00:00Z", "00000000-0000-0000-0000-000000000000", "extra"),
    _cursor(1, 2),
    _cursor("99999999999999999999"),
    _cursor("-1"),
    _cursor("1e5"),
    _cursor({"seq": 1}),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
]


@pytest.mark.parametrize("cursor", CURSORS, ids=range(len(CURSORS)))
async def test_tampered_cursors_and_filters(client: Client, make_user: Any, cursor: str) -> None:
    user = await make_user()
    for path in ("/v1/transactions", "/v1/balance-history"):
        for query in (
            {"before": cursor},
            {"before": cursor, "limit": "5"},
            {"status": "completed' OR '1'='1"},
            {"type": "send_phone", "limit": "99999999999999999999"},
            {"limit": "-1"},
            {"limit": "1.5"},
        ):
            qs = "&".join(f"{k}={quote(v)}" for k, v in query.items())
            r = await client.call("GET", f"{path}?{qs}", user)
            assert r.status in (200, 400) and r.content_type == "application/json", (path, query, r.body)
            if r.status == 200:
                assert all(i.get("id") for i in r.body["items"])


ODD_REQUESTS = [
    ("PUT", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("GET", "/v1/me/pin"),
    ("GET", "/v1/contacts/"),
    ("GET", "/v1/contacts/..%2f..%2fme"),
    ("GET", "/v1/contacts/%00"),
    ("GET", "/v1/contacts/" + "a" * 5000),
    ("PATCH", "/v1/contacts:import"),
    ("GET", "/v1/transactions/00000000-0000-0000-0000-000000000000%27%20OR%201=1--"),
    ("GET", "/v1/topups/{00000000-0000-0000-0000-000000000000}"),
    ("OPTIONS", "/v1/me"),
    ("POST", "/v1/payment-methods/00000000-0000-0000-0000-000000000000"),
]


@pytest.mark.parametrize(("verb", "path"), ODD_REQUESTS)
async def test_odd_methods_and_paths_are_json_4xx(
    client: Client, make_user: Any, verb: str, path: str
) -> None:
    user = await make_user()
    r = await client.call(verb, path, user)
    assert 400 <= r.status < 500 and r.content_type == "application/json", (verb, path, r.status, r.body)


async def test_a_deeply_nested_body_is_400_on_every_route(client: Client, make_user: Any) -> None:
    """Nesting that JSON parses (600 levels) but a recursive walk of the body would not survive."""
    user = await make_user()
    raw = '{"type": "mpesa", "phone": "0712345678", "x": ' + "[" * 600 + "]" * 600 + "}"
    for method, path in ROUTES:
        r = await client.call(method, path, user, data=raw)
        assert r.status == 400 and r.content_type == "application/json", (path, r.status, r.body)


@pytest.mark.parametrize("limit", ["00000199999", "000001" + "0" * 5000, "0" * 7 + "5"])
async def test_a_padded_limit_is_read_whole(
    client: Client, make_user: Any, db: asyncpg.Pool, limit: str
) -> None:
    """Leading zeros once hid a page size past the maximum (only the first six digits were checked)."""
    user = await make_user()
    await db.execute(
        """INSERT INTO transactions (user_id, type, amount, phone, status)
           SELECT $1, 'send_phone', 10, '254711000001', 'cancelled' FROM generate_series(1, 120)""",
        user.id,
    )
    for path, most in (("/v1/transactions", 100), ("/v1/balance-history", 200)):
        r = await client.call("GET", f"{path}?limit={limit}", user)
        assert r.content_type == "application/json", r.status
        digits = limit.lstrip("0")
        if len(digits) <= 3 and int(digits) <= most:
            assert r.status == 200
        else:
            assert (r.status, r.body["error"]["code"]) == (400, "invalid_limit"), (path, r.status)
