"""`/v1/contacts`: saved, normalised, one per number, only ever the user's own; address books imported with
reasons for what was left out; payment totals kept by the database when a payment completes."""

from __future__ import annotations

import asyncpg
import pytest

from ledger.models import ProposalRequest
from ledger.service import Ledger

from .conftest import Api, MakeApiUser


async def test_create_normalises_and_lists(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    r = await api.call(
        "POST",
        "/v1/contacts",
        user,
        json={
            "name": "  Mama   Njeri ",
            "phone": "0712 345 678",
            "nickname": "Mama",
            "default_amount": "500",
        },
    )
    assert r.status == 201, r.body
    assert (r.body["name"], r.body["phone"], r.body["default_amount"]) == (
        "Mama Njeri",
        "254712345678",
        "500.00",
    )
    assert (r.body["transaction_count"], r.body["total_sent"], r.body["favorite"]) == (0, "0.00", False)
    await api.call(
        "POST", "/v1/contacts", user, json={"name": "Baba", "phone": "+254 110 000 001", "favorite": True}
    )
    listed = await api.call("GET", "/v1/contacts", user)
    assert [c["name"] for c in listed.body["items"]] == ["Baba", "Mama Njeri"]  # favourites first
    one = await api.call("GET", f"/v1/contacts/{r.body['id']}", user)
    assert one.body == r.body


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Tom", "phone": "+44 7911 123456"}, 400, "foreign_number"),
        ({"name": "Tom", "phone": "020 2222222"}, 400, "invalid_phone"),  # a Nairobi landline
        ({"name": "Tom", "phone": "hello"}, 400, "invalid_phone"),
        ({"name": "   ", "phone": "0712345670"}, 400, "invalid_text"),
        ({"name": "x" * 101, "phone": "0712345670"}, 400, "invalid_text"),
        ({"name": "Tom", "phone": "0712345670", "default_amount": "-5"}, 400, "invalid_amount"),
        ({"name": "Tom", "phone": "0712345670", "transaction_count": 99}, 400, "unknown_field"),
        ({"name": "Tom", "phone": "0712345670", "total_sent": "1000000"}, 400, "unknown_field"),
        (
            {"name": "Tom", "phone": "0712345670", "user_id": "00000000-0000-0000-0000-000000000001"},
            400,
            "unknown_field",
        ),
        ({"name": 5, "phone": "0712345670"}, 400, "invalid_request"),
    ],
)
async def test_bad_contacts_are_refused(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool, body: dict[str, object], status: int, code: str
) -> None:
    user = await make_api_user()
    r = await api.call("POST", "/v1/contacts", user, json=body)
    assert (r.status, r.body["error"]["code"]) == (status, code)
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 0


async def test_sql_and_control_characters_in_a_name_are_just_text(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    user = await make_api_user()
    name = "Robert'); DROP TABLE contacts;--\x00\x07"
    r = await api.call("POST", "/v1/contacts", user, json={"name": name, "phone": "0712000111"})
    assert r.status == 201
    assert r.body["name"] == "Robert'); DROP TABLE contacts;--"
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 1


async def test_one_contact_per_number(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    first = await api.call("POST", "/v1/contacts", user, json={"name": "Mama", "phone": "0712345678"})
    assert first.status == 201
    again = await api.call("POST", "/v1/contacts", user, json={"name": "Mum", "phone": "+254712345678"})
    assert (again.status, again.body["error"]["code"]) == (409, "contact_exists")
    other = await api.call("POST", "/v1/contacts", user, json={"name": "Dad", "phone": "0712345679"})
    moved = await api.call("PATCH", f"/v1/contacts/{other.body['id']}", user, json={"phone": "0712 345 678"})
    assert (moved.status, moved.body["error"]["code"]) == (409, "contact_exists")


async def test_patch_and_delete(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    made = (
        await api.call(
            "POST", "/v1/contacts", user, json={"name": "Mama", "phone": "0712345678", "nickname": "Ma"}
        )
    ).body
    r = await api.call(
        "PATCH",
        f"/v1/contacts/{made['id']}",
        user,
        json={"favorite": True, "nickname": None, "default_amount": 250},
    )
    assert r.status == 200
    assert (r.body["favorite"], r.body["nickname"], r.body["default_amount"], r.body["name"]) == (
        True,
        None,
        "250.00",
        "Mama",
    )
    r = await api.call("PATCH", f"/v1/contacts/{made['id']}", user, json={"transaction_count": 1000})
    assert (r.status, r.body["error"]["code"]) == (400, "unknown_field")
    assert (await api.call("DELETE", f"/v1/contacts/{made['id']}", user)).status == 204
    assert (await api.call("GET", f"/v1/contacts/{made['id']}", user)).status == 404
    assert (await api.call("DELETE", f"/v1/contacts/{made['id']}", user)).status == 404


async def test_b_never_reads_changes_or_deletes_a_contact(
    api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool
) -> None:
    a, b = await make_api_user(), await make_api_user()
    mine = (await api.call("POST", "/v1/contacts", a, json={"name": "Mama A", "phone": "0712345678"})).body
    path = f"/v1/contacts/{mine['id']}"
    for method, body in [("GET", None), ("PATCH", {"name": "hacked"}), ("PATCH", {}), ("DELETE", None)]:
        r = await api.call(method, path, b, json=body)
        assert (r.status, r.body["error"]["code"]) == (404, "not_found"), method
    assert (await api.call("GET", "/v1/contacts", b)).body["items"] == []
    # B saving the same number is B's own contact, not a view of A's.
    r = await api.call("POST", "/v1/contacts", b, json={"name": "B's", "phone": "0712345678"})
    assert r.status == 201 and r.body["id"] != mine["id"]
    assert (await api.call("GET", path, a)).body == mine
    row = await pool.fetchrow("SELECT name, user_id FROM contacts WHERE id = $1", mine["id"])
    assert (row["name"], row["user_id"]) == ("Mama A", a.id)


async def test_import_an_address_book(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    await api.call("POST", "/v1/contacts", user, json={"name": "Already", "phone": "0799000001"})
    book: list[dict[str, object]] = [
        {"name": f"Friend {i}", "phone": f"07{i // 10000 % 10}{i:07d}"[:10], "emails": ["x@example.com"]}
        for i in range(600)
    ]
    book += [
        {"name": "Dup of friend 0", "phone": book[0]["phone"]},
        {"name": "Uncle in London", "phone": "+44 7911 123456"},
        {"name": "Nonsense", "phone": "call me"},
        {"name": "", "phone": "0799000002"},
        {"name": "Already again", "phone": "+254 799 000001"},
    ]
    r = await api.call("POST", "/v1/contacts:import", user, json={"contacts": book})
    assert r.status == 201, r.body
    assert len(r.body["imported"]) == 600
    reasons = {s["index"]: s["reason"] for s in r.body["skipped"]}
    assert reasons == {
        600: "duplicate",
        601: "foreign_number",
        602: "invalid_phone",
        603: "invalid_name",
        604: "already_saved",
    }
    assert len((await api.call("GET", "/v1/contacts", user)).body["items"]) == 601
    again = await api.call("POST", "/v1/contacts:import", user, json={"contacts": book[:10]})
    assert again.body["imported"] == [] and {s["reason"] for s in again.body["skipped"]} == {"already_saved"}


async def test_import_limits(api: Api, make_api_user: MakeApiUser, pool: asyncpg.Pool) -> None:
    user = await make_api_user()
    too_many = [{"name": "x", "phone": "0712345678"}] * 5001
    r = await api.call("POST", "/v1/contacts:import", user, json={"contacts": too_many})
    assert (r.status, r.body["error"]["code"]) == (400, "invalid_request")
    huge = {"contacts": [{"name": "y" * 900, "phone": "0712345678"}] * 3000}  # ~2.8 MB
    r = await api.call("POST", "/v1/contacts:import", user, json=huge)
    assert r.status == 413
    r = await api.call("POST", "/v1/contacts:import", user, json={"contacts": "everyone"})
    assert r.status == 400
    assert await pool.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", user.id) == 0


async def test_the_colon_route_is_not_a_contact_id(api: Api, make_api_user: MakeApiUser) -> None:
    user = await make_api_user()
    r = await api.call("POST", "/v1/contacts:import", user, json={"contacts": []})
    assert (r.status, r.body) == (201, {"imported": [], "skipped": []})
    r = await api.call("GET", "/v1/contacts:import", user)
    assert r.status == 405


async def test_completed_payment_counts_towards_the_contact(
    api: Api, make_api_user: MakeApiUser, ledger: Ledger
) -> None:
    user, other = await make_api_user(plan="pro"), await make_api_user(plan="pro")
    mama = (await api.call("POST", "/v1/contacts", user, json={"name": "Mama", "phone": "0712345678"})).body
    # The other user's contact with the same number must not move when *this* user pays it.
    theirs = (await api.call("POST", "/v1/contacts", other, json={"name": "M", "phone": "0712345678"})).body

    async def pay(amount: str, success: bool) -> None:
        p = await ledger.propose(
            user.id, ProposalRequest.build(type="send_phone", amount=amount, phone="0712345678")
        )
        await ledger.confirm(p.id, user.id, 1, voice_verified=True)
        await ledger.settle(
            p.id,
            success=success,
            receipt="R" + p.id.hex[:9] if success else None,
            error=None if success else "x",
        )
        await ledger.settle(
            p.id, success=success, receipt="R" + p.id.hex[:9] if success else None
        )  # a duplicate

    await pay("300", True)
    await pay("200", False)  # failed: not sent
    await pay("150", True)
    got = (await api.call("GET", f"/v1/contacts/{mama['id']}", user)).body
    assert (got["transaction_count"], got["total_sent"]) == (2, "450.00")
    assert (await api.call("GET", f"/v1/contacts/{theirs['id']}", other)).body["transaction_count"] == 0

    # Saved again later (deleted, re-added, or imported) it starts from the payments already made.
    await api.call("DELETE", f"/v1/contacts/{mama['id']}", user)
    again = await api.call(
        "POST", "/v1/contacts:import", user, json={"contacts": [{"name": "Mama", "phone": "+254712345678"}]}
    )
    assert (again.body["imported"][0]["transaction_count"], again.body["imported"][0]["total_sent"]) == (
        2,
        "450.00",
    )
    moved = await api.call(
        "PATCH", f"/v1/contacts/{again.body['imported'][0]['id']}", user, json={"phone": "0712345679"}
    )
    assert (moved.body["transaction_count"], moved.body["total_sent"]) == (0, "0.00")
    # The other user saving the number afresh counts only their own payments (none): no peek at this user's.
    await api.call("DELETE", f"/v1/contacts/{theirs['id']}", other)
    theirs_later = await api.call("POST", "/v1/contacts", other, json={"name": "N", "phone": "0712345678"})
    assert (theirs_later.status, theirs_later.body["transaction_count"]) == (201, 0)
