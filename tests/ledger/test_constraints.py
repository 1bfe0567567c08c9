"""Each check constraint (founding and ledger) rejects a bad row: the database itself refuses bad money."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from .conftest import MakeUser

TX = "INSERT INTO transactions (user_id, type, amount, status) VALUES ($1, 'send_phone', 100, 'pending')"

# (name, statement with $1 = an existing user id, constraint expected in the error)
BAD_ROWS = [
    ("profiles.wallet_balance", "UPDATE profiles SET wallet_balance = -0.01 WHERE id = $1", "wallet_balance"),
    (
        "profiles.default_payment_method",
        "UPDATE profiles SET default_payment_method = 'cash' WHERE id = $1",
        "default_payment_method",
    ),
    (
        "profiles.held_balance",
        "UPDATE profiles SET held_balance = wallet_balance + 1 WHERE id = $1",
        "held_balance",
    ),
    ("profiles.held_balance_negative", "UPDATE profiles SET held_balance = -1 WHERE id = $1", "held_balance"),
    ("transactions.type", TX.replace("'send_phone'", "'steal'"), "type"),
    ("transactions.amount_zero", TX.replace("100,", "0,"), "amount"),
    ("transactions.amount_huge", TX.replace("100,", "1000000,"), "amount"),
    ("transactions.status", TX.replace("'pending')", "'lost')"), "status"),
    (
        "transactions.confidence_score",
        "INSERT INTO transactions (user_id, type, amount, confidence_score)"
        " VALUES ($1, 'send_phone', 1, 101)",
        "confidence_score",
    ),
    (
        "transactions.fee",
        "INSERT INTO transactions (user_id, type, amount, fee) VALUES ($1, 'send_phone', 10, 10)",
        "fee",
    ),
    (
        "transactions.confirmed_at",
        "INSERT INTO transactions (user_id, type, amount, status)"
        " VALUES ($1, 'send_phone', 10, 'processing')",
        "confirmed",
    ),
    (
        "voice_sessions.status",
        "INSERT INTO voice_sessions (user_id, session_id, agent_id, status)"
        " VALUES ($1, gen_random_uuid()::text,"
        " 'a', 'paused')",
        "status",
    ),
    (
        "mpesa_transactions.status",
        "INSERT INTO mpesa_transactions (user_id, amount, phone_number, status)"
        " VALUES ($1, 10, '254700', 'ok')",
        "status",
    ),
    (
        "mpesa_transactions.kind",
        "INSERT INTO mpesa_transactions (user_id, amount, phone_number, kind)"
        " VALUES ($1, 10, '254700', 'gift')",
        "kind",
    ),
    (
        "mpesa_transactions.amount",
        "INSERT INTO mpesa_transactions (user_id, amount, phone_number) VALUES ($1, 0, '254700')",
        "amount",
    ),
    (
        "payment_methods.method_type",
        "INSERT INTO payment_methods (user_id, method_type) VALUES ($1, 'paypal')",
        "method_type",
    ),
    (
        "subscriptions.plan_type",
        "INSERT INTO subscriptions (user_id, plan_type, monthly_fee, transaction_fee_percentage,"
        " current_period_start, current_period_end) VALUES ($1, 'gold', 0, 0, now(), now())",
        "plan_type",
    ),
    (
        "subscriptions.status",
        "INSERT INTO subscriptions (user_id, plan_type, status, monthly_fee, transaction_fee_percentage,"
        " current_period_start, current_period_end) VALUES ($1, 'free', 'paused', 0, 0, now(), now())",
        "status",
    ),
]


@pytest.mark.parametrize(("name", "statement", "column"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
async def test_check_constraint_rejects_bad_row(
    pool: asyncpg.Pool, make_user: MakeUser, name: str, statement: str, column: str
) -> None:
    user = await make_user("100.00")
    async with pool.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            if name == "profiles.wallet_balance":
                # The ledger's held_balance check would fire as well: prove the founding one on its own.
                await conn.execute("ALTER TABLE profiles DROP CONSTRAINT profiles_held_balance_check")
            with pytest.raises(asyncpg.CheckViolationError) as err:
                await conn.execute(statement, user)
        finally:
            await tr.rollback()
    assert column in (err.value.constraint_name or "")
    assert await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user) == 100


async def test_payout_outbox_checks(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    user = await make_user("100.00")
    tx = await pool.fetchval(TX + " RETURNING id", user)
    for kind, status in (("cash", "pending"), ("mpesa_payout", "lost")):
        with pytest.raises(asyncpg.CheckViolationError):
            await pool.execute(
                "INSERT INTO payout_outbox (transaction_id, user_id, kind, status) VALUES ($1, $2, $3, $4)",
                tx,
                user,
                kind,
                status,
            )
    await pool.execute(
        "INSERT INTO payout_outbox (transaction_id, user_id, kind) VALUES ($1, $2, 'mpesa_payout')", tx, user
    )
    with pytest.raises(asyncpg.UniqueViolationError):  # one payout per transaction, ever
        await pool.execute(
            "INSERT INTO payout_outbox (transaction_id, user_id, kind) VALUES ($1, $2, 'mpesa_payout')",
            tx,
            user,
        )
    await pool.execute("DELETE FROM payout_outbox WHERE transaction_id = $1", tx)
    await pool.execute("DELETE FROM transactions WHERE id = $1", tx)


async def test_update_user_balance_refuses_overdraft_and_unknown_user(
    pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    user = await make_user("100.00")
    with pytest.raises(asyncpg.PostgresError) as err:
        await pool.execute("SELECT update_user_balance($1, NULL, -100.01, 'test')", user)
    assert err.value.args[0] == "insufficient_balance"
    with pytest.raises(asyncpg.PostgresError) as err:
        await pool.execute("SELECT update_user_balance($1, NULL, 1, 'test')", uuid.uuid4())
    assert err.value.args[0] == "user_not_found"
