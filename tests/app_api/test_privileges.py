"""What 0011 grants the user role (`authenticated` with a user's claims, as Supabase's PostgREST would run a
request), checked in SQL beneath the API: a user writes only their own contacts and payment methods, never
their counters, never a card token back out, never the Stripe event log."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from ledger.reads import as_user

from .conftest import MakeApiUser


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE contacts SET transaction_count = 1000",
        "UPDATE contacts SET total_sent = 1000000",
        "INSERT INTO contacts (user_id, name, phone_number, total_sent) VALUES ($1, 'x', '254712345678', 9)",
        "UPDATE contacts SET user_id = $1",
        "SELECT card_token FROM payment_methods",
        "UPDATE payment_methods SET card_token = 'tok_x'",
        "UPDATE payment_methods SET user_id = $1",
        "UPDATE payment_methods SET is_active = false",
        "SELECT * FROM stripe_events",
        "INSERT INTO stripe_events (id, type, outcome) VALUES ('evt_1', 'x', 'applied')",
        "UPDATE subscriptions SET plan_type = 'business'",
        "SELECT app_count_contact_payment()",
    ],
)
async def test_user_role_cannot(pool: asyncpg.Pool, make_api_user: MakeApiUser, statement: str) -> None:
    user = (await make_api_user("100.00")).id
    async with as_user(pool, user, readonly=False) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement, *([user] if "$1" in statement else []))


async def test_user_role_cannot_write_rows_of_another(pool: asyncpg.Pool, make_api_user: MakeApiUser) -> None:
    a, b = (await make_api_user()).id, (await make_api_user()).id
    contact = await pool.fetchval(
        "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, 'A', '254712345678') RETURNING id", a
    )
    async with as_user(pool, b, readonly=False) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # row level security: WITH CHECK
            await conn.execute(
                "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, 'planted', '254712345679')", a
            )
    async with as_user(pool, b, readonly=False) as conn:
        assert await conn.execute("UPDATE contacts SET name = 'x' WHERE id = $1", contact) == "UPDATE 0"
        assert await conn.execute("DELETE FROM contacts WHERE user_id = $1", a) == "DELETE 0"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO payment_methods (user_id, method_type, mpesa_number)"
                " VALUES ($1, 'mpesa', '254712345678')",
                a,
            )
    assert await pool.fetchval("SELECT name FROM contacts WHERE id = $1", contact) == "A"
    async with as_user(pool, a, readonly=False) as conn:  # and a user's own contact: fine
        assert await conn.execute("UPDATE contacts SET favorite = true WHERE id = $1", contact) == "UPDATE 1"


async def test_pooled_connection_is_not_left_as_the_user(
    pool: asyncpg.Pool, make_api_user: MakeApiUser
) -> None:
    user = (await make_api_user("1.00")).id
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_user(pool, user, readonly=False) as conn:
            await conn.execute("UPDATE contacts SET total_sent = 1")
    for _ in range(5):  # whichever connection comes back next
        assert await pool.fetchval("SELECT current_user") != "authenticated"
        assert await pool.fetchval("SELECT auth.uid()") is None
    assert uuid.UUID(str(user))
