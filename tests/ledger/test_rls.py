"""User-facing reads run under row level security: user A's token can never read B's rows, and the pooled
connection gets its own role back after every read."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest

from ledger.db import create_pool
from ledger.models import ProposalRequest
from ledger.reads import as_user, user_balance_history, user_contacts, user_profile, user_transactions
from ledger.service import Ledger
from voice_server.auth import mint_user_token, verify_user_token

from .conftest import MakeUser

SECRET = "test-secret-for-rls-" + "x" * 20


async def _user_with_activity(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool, name: str
) -> uuid.UUID:
    user = await make_user("1000.00", plan="pro")
    p = await ledger.propose(user, ProposalRequest.build(type="send_phone", amount="100", phone="0711222333"))
    await ledger.confirm(p.id, user, 1, voice_verified=True)
    await ledger.propose(user, ProposalRequest.build(type="buy_goods_till", amount="50", till="54321"))
    await pool.execute(
        "INSERT INTO contacts (user_id, name, phone_number) VALUES ($1, $2, '254711222333')", user, name
    )
    return user


async def test_a_token_for_a_never_reads_b(database_url: str, ledger: Ledger, make_user: MakeUser) -> None:
    pool = ledger.pool
    a = await _user_with_activity(ledger, make_user, pool, "Contact of A")
    b = await _user_with_activity(ledger, make_user, pool, "Contact of B")
    b_tx = {r["id"] for r in await pool.fetch("SELECT id FROM transactions WHERE user_id = $1", b)}
    b_hist = {r["id"] for r in await pool.fetch("SELECT id FROM balance_history WHERE user_id = $1", b)}

    # The user-facing path: the id comes from a verified token, never from the request.
    uid = verify_user_token(SECRET, mint_user_token(SECRET, a, ttl_seconds=60))
    txs = await user_transactions(pool, uid, limit=200)
    hist = await user_balance_history(pool, uid, limit=500)
    contacts = await user_contacts(pool, uid)
    profile = await user_profile(pool, uid)
    assert len(txs) == 2 and not {t["id"] for t in txs} & b_tx
    assert len(hist) == 3 and not {h["id"] for h in hist} & b_hist
    assert [c["name"] for c in contacts] == ["Contact of A"]
    assert profile is not None and profile["id"] == a and profile["available"] == Decimal("849.25")
    assert "pin_hash" not in profile

    # Even a query naming B's rows explicitly sees nothing, and B's data cannot be changed.
    async with as_user(pool, a) as conn:
        assert await conn.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", b) == 0
        assert await conn.fetchval("SELECT count(*) FROM balance_history WHERE user_id = $1", b) == 0
        assert await conn.fetchval("SELECT count(*) FROM contacts WHERE user_id = $1", b) == 0
        assert await conn.fetchval("SELECT count(*) FROM profiles WHERE id = $1", b) == 0
        assert await conn.fetchval("SELECT current_user") == "authenticated"
    async with as_user(pool, a) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # server-side table: no grant at all
            await conn.fetch("SELECT * FROM payout_outbox")
    async with as_user(pool, a) as conn:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("UPDATE profiles SET wallet_balance = 1e6")


async def test_pooled_connection_gets_its_own_role_back(database_url: str, make_user: MakeUser) -> None:
    user = await make_user("5.00")
    single = await create_pool(database_url, min_size=1, max_size=1)
    try:
        owner = await single.fetchval("SELECT current_user")
        assert owner != "authenticated"
        assert len(await user_transactions(single, user)) == 0
        with pytest.raises(ZeroDivisionError):  # a read that fails half-way must not leave the role behind
            async with as_user(single, user):
                raise ZeroDivisionError
        row = await single.fetchrow(
            "SELECT current_user AS role,"
            " coalesce(current_setting('request.jwt.claims', true), '') AS claims,"
            " auth.uid() AS uid"
        )
        assert (row["role"], row["claims"], row["uid"]) == (owner, "", None)
        # And as the owner (the server) the connection still sees everything it should.
        assert await single.fetchval("SELECT count(*) FROM profiles WHERE id = $1", user) == 1
    finally:
        await single.close()
