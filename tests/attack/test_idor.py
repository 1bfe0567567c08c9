"""B guesses A's ids (or learns them): every read, change and delete of A's rows is the same 404 as an id
that names nothing, and A's rows are as they were."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from voice_server.app_api.queries import encode_cursor

from .conftest import Client


async def test_b_learns_nothing_from_a_ids(client: Client, make_user: Any, db: asyncpg.Pool) -> None:
    a, b = await make_user("900.00"), await make_user("100.00")
    contact = (
        await client.call("POST", "/v1/contacts", a, json_body={"name": "Mama", "phone": "0711000001"})
    ).body
    method = (
        await client.call(
            "POST", "/v1/payment-methods", a, json_body={"type": "mpesa", "phone": "0711000002"}
        )
    ).body
    tx = await db.fetchrow(
        """INSERT INTO transactions (user_id, type, amount, phone, status)
           VALUES ($1, 'send_phone', 50, '254711000001', 'cancelled') RETURNING id, created_at""",
        a.id,
    )
    topup = await db.fetchval(
        "INSERT INTO mpesa_transactions (user_id, amount, phone_number) VALUES ($1, 10, $2) RETURNING id",
        a.id,
        a.phone,
    )
    nothing = str(uuid.uuid4())
    probes = [
        ("GET", "/v1/contacts/{}", contact["id"], None),
        ("PATCH", "/v1/contacts/{}", contact["id"], {"name": "Owned"}),
        ("DELETE", "/v1/contacts/{}", contact["id"], None),
        ("DELETE", "/v1/payment-methods/{}", method["id"], None),
        ("GET", "/v1/transactions/{}", str(tx["id"]), None),
        ("GET", "/v1/topups/{}", str(topup), None),
    ]
    for verb, path, theirs, body in probes:
        got = await client.call(verb, path.format(theirs), b, json_body=body)
        none = await client.call(verb, path.format(nothing), b, json_body=body)
        assert got.status == 404 and (got.status, got.body) == (none.status, none.body), (verb, path)
    # A cursor forged from A's transaction pages through B's rows only.
    forged = encode_cursor((tx["created_at"]).isoformat(), uuid.UUID(int=2**128 - 1))
    for query in (f"before={forged}", "status=cancelled", f"user_id={a.id}"):
        page = await client.call("GET", f"/v1/transactions?{query}", b)
        assert page.status in (200, 400) and str(tx["id"]) not in str(page.body)
    history = await client.call("GET", f"/v1/balance-history?user_id={a.id}", b)
    assert "900.00" not in str(history.body)
    assert (await client.call("GET", f"/v1/contacts/{contact['id']}", a)).body["name"] == "Mama"
    assert len((await client.call("GET", "/v1/payment-methods", a)).body["items"]) == 1
