"""Who may spend, decided by the ledger whoever calls it (sql/0019): the PIN threshold, the allowance without
a PIN (5 payments or KES 3,000 since the last payment confirmed with the PIN), the lock, and the evidence of
a right PIN, good once and only in its own database transaction. Attacked as a caller that skips the
dialogue would: racing confirmations, replayed evidence, the user role with Supabase's grants."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from ledger.models import ConfirmResult, LedgerError, ProposalRequest
from ledger.pins import check_user_pin
from ledger.service import Ledger
from tests.ledger.conftest import MakeUser
from tests.ledger.test_privileges import acting_as

D = Decimal


def send(amount: str) -> ProposalRequest:
    return ProposalRequest.build(type="send_phone", amount=amount, phone="0712345678")


async def _confirm_all(ledger: Ledger, user: uuid.UUID, ids: list[uuid.UUID]) -> list[object]:
    return list(
        await asyncio.gather(
            *(ledger.confirm(i, user, 1, voice_verified=True) for i in ids), return_exceptions=True
        )
    )


async def _statuses(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> list[str]:
    rows = await pool.fetch("SELECT status FROM transactions WHERE id = ANY($1::uuid[])", ids)
    return sorted(r["status"] for r in rows)


async def test_fifteen_racing_confirmations_without_a_pin_pass_only_the_allowance(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("50000.00", plan="pro", pin="4321")
    ids = [(await ledger.propose(user, send("1000"))).id for _ in range(15)]
    results = await _confirm_all(ledger, user, ids)
    committed = [r for r in results if isinstance(r, ConfirmResult)]
    refused = [r.code for r in results if isinstance(r, LedgerError)]
    assert len(committed) == 3  # KES 3,000 of KES 1,000 payments
    assert refused == ["pin_required"] * 12
    # The refused ones are still pending (the app finishes them with the keypad), the books hold.
    assert await _statuses(pool, ids) == ["pending"] * 12 + ["processing"] * 3
    row = await pool.fetchrow("SELECT no_pin_count, no_pin_amount FROM profiles WHERE id = $1", user)
    assert (row["no_pin_count"], row["no_pin_amount"]) == (3, D("3000.00"))
    # A right PIN confirms one, and the allowance is whole again: three more without a PIN.
    pending = [i for i in ids if (await ledger.get_transaction(i)).status == "pending"]  # type: ignore[union-attr]
    with_pin = await ledger.confirm(pending[0], user, 1, voice_verified=False, pin="4321")
    assert with_pin.pin_verified and with_pin.outcome == "confirmed"
    again = await _confirm_all(ledger, user, pending[1:])
    assert sum(isinstance(r, ConfirmResult) for r in again) == 3
    assert (await ledger.get_transaction(pending[0])).pin_verified  # type: ignore[union-attr]


async def test_the_count_and_the_threshold(ledger: Ledger, make_user: MakeUser) -> None:
    user = await make_user("50000.00", plan="pro", pin="4321")
    for _ in range(5):
        p = await ledger.propose(user, send("100"))
        assert not p.needs_pin
        await ledger.confirm(p.id, user, 1, voice_verified=True)
    sixth = await ledger.propose(user, send("100"))
    assert sixth.needs_pin  # the proposal says so: the read-back asks for the PIN
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(sixth.id, user, 1, voice_verified=False)
    assert err.value.code == "pin_required"
    await ledger.confirm(sixth.id, user, 1, voice_verified=False, pin="4321")
    exactly = await ledger.propose(user, send("1000"))
    assert not exactly.needs_pin
    await ledger.confirm(exactly.id, user, 1, voice_verified=True)
    above = await ledger.propose(user, send("1001"))
    assert above.needs_pin
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(above.id, user, 1, voice_verified=True)
    assert err.value.code == "pin_required"


async def test_a_deposit_from_the_bank_needs_no_pin_and_does_not_count(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("5000.00", plan="pro")  # no PIN at all
    for _ in range(7):
        p = await ledger.propose(
            user, ProposalRequest.build(type="bank_to_mpesa", amount="5000", bank_code="68")
        )
        assert not p.needs_pin
        await ledger.confirm(p.id, user, 1, voice_verified=True)
    assert await pool.fetchval("SELECT no_pin_count FROM profiles WHERE id = $1", user) == 0
    # Without a PIN, a payment past the allowance is refused before read-back.
    with pytest.raises(LedgerError) as err:
        await ledger.propose(user, send("1500"))
    assert err.value.code == "pin_not_set"


async def test_a_locked_user_can_pay_nothing_but_still_reads_and_tops_up(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("5000.00", plan="pro", pin="4321")
    first = await ledger.propose(user, send("100"))
    second = await ledger.propose(user, send("100"))
    for _ in range(5):
        await check_user_pin(pool, user, "0000")
    with pytest.raises(LedgerError) as err:
        await ledger.propose(user, send("100"))
    assert err.value.code == "pin_locked"
    with pytest.raises(LedgerError) as err:
        await ledger.revise(first.id, user, send("50"))
    assert err.value.code == "pin_locked"
    with pytest.raises(LedgerError) as err:  # a proposal read back before the lock: refused and voided
        await ledger.confirm(first.id, user, 1, voice_verified=False)
    assert err.value.code == "pin_locked"
    tx = await ledger.get_transaction(first.id)
    assert tx is not None and tx.status == "cancelled"
    with pytest.raises(LedgerError) as err:  # even with the right PIN, while locked
        await ledger.confirm(second.id, user, 1, voice_verified=False, pin="4321")
    assert err.value.code == "pin_locked"
    await ledger.cancel(second.id, user)
    balance = await ledger.balance(user)
    assert balance.wallet == D("5000.00") and balance.held == 0
    deposit = await ledger.propose(
        user, ProposalRequest.build(type="bank_to_mpesa", amount="500", bank_code="68")
    )
    assert (await ledger.confirm(deposit.id, user, 1, voice_verified=True)).outcome == "confirmed"


async def test_the_evidence_of_a_pin_is_good_once_and_only_in_its_own_transaction(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("50000.00", plan="pro", pin="4321")
    big = [(await ledger.propose(user, send("2000"))).id for _ in range(3)]
    # A right PIN in one transaction, the confirmation in another: refused (no replay across transactions).
    assert (await check_user_pin(pool, user, "4321")).outcome == "ok"
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(big[0], user, 1, voice_verified=False)
    assert err.value.code == "pin_required"
    # One right PIN, two confirmations in the same transaction: the first only.
    async with pool.acquire() as conn, conn.transaction():
        assert (await check_user_pin(conn, user, "4321")).outcome == "ok"
        on_conn = Ledger(conn)  # type: ignore[arg-type]
        assert (await on_conn.confirm(big[0], user, 1, voice_verified=False)).pin_verified
        with pytest.raises(LedgerError) as err:
            await on_conn.confirm(big[1], user, 1, voice_verified=False)
        assert err.value.code == "pin_required"
    # A right PIN followed by a wrong one: the wrong one spoils it.
    async with pool.acquire() as conn, conn.transaction():
        await check_user_pin(conn, user, "4321")
        assert (await check_user_pin(conn, user, "1111")).outcome == "wrong"
        with pytest.raises(LedgerError) as err:
            await Ledger(conn).confirm(big[1], user, 1, voice_verified=False)  # type: ignore[arg-type]
        assert err.value.code == "pin_required"
    # Another user's right PIN is no evidence for this one.
    other = await make_user("100.00", plan="pro", pin="9999")
    async with pool.acquire() as conn, conn.transaction():
        await check_user_pin(conn, other, "9999")
        with pytest.raises(LedgerError) as err:
            await Ledger(conn).confirm(big[2], user, 1, voice_verified=False)  # type: ignore[arg-type]
        assert err.value.code == "pin_required"
    # A wrong PIN through Ledger.confirm is counted and refused.
    with pytest.raises(LedgerError) as err:
        await ledger.confirm(big[2], user, 1, voice_verified=False, pin="2222")
    assert err.value.code == "wrong_pin"
    assert await pool.fetchval("SELECT pin_failed_attempts FROM profiles WHERE id = $1", user) == 2


_GATE = "SELECT no_pin_count, no_pin_amount, pin_failed_attempts, pin_locked_until, pin_hash FROM profiles"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE profiles SET no_pin_count = 0, no_pin_amount = 0",
        "UPDATE profiles SET pin_failed_attempts = 0, pin_locked_until = NULL",
        "UPDATE profiles SET pin_hash = 'x'",
        "UPDATE ledger_rules SET no_pin_count = 1000000",
        "DELETE FROM ledger_rules",
        "TRUNCATE ledger_rules",
        "INSERT INTO ledger_pin_evidence (user_id, xact) VALUES ($1, pg_current_xact_id())",
        "TRUNCATE ledger_pin_evidence",
        "SELECT * FROM ledger_pin_attempt($1, true)",
        "SELECT ledger_take_pin_evidence($1)",
    ],
)
async def test_the_user_role_cannot_open_the_gate_even_after_grant_all(
    pool: asyncpg.Pool, make_user: MakeUser, statement: str
) -> None:
    """A blanket `GRANT ALL` (a common Supabase habit) is made inside the test's own transaction, which is
    rolled back: the guard triggers and row level security, not the grants, keep the gate shut. What the
    statement left is read inside that transaction, as the server's role, before the rollback."""
    user = await make_user("500.00", pin="4321")
    await pool.execute(
        """UPDATE profiles SET no_pin_count = 5, no_pin_amount = 2900, pin_failed_attempts = 5,
                  pin_locked_until = now() + interval '1 hour' WHERE id = $1""",
        user,
    )
    gate = await pool.fetchrow(_GATE + " WHERE id = $1", user)
    rules = await pool.fetchrow("SELECT * FROM ledger_rules")
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO authenticated")
            await conn.execute("GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO authenticated")
            await conn.execute("SELECT set_config('role', 'authenticated', true)")
            claims = f'{{"sub": "{user}", "role": "authenticated"}}'
            await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
            args = [user] if "$1" in statement else []
            try:
                async with conn.transaction():
                    await conn.execute(statement, *args)
            except asyncpg.InsufficientPrivilegeError:
                pass  # refused outright; else it found no row it may touch
            await conn.execute("SELECT set_config('role', 'postgres', true)")
            assert await conn.fetchrow(_GATE + " WHERE id = $1", user) == gate
            assert await conn.fetchrow("SELECT * FROM ledger_rules") == rules
            assert (
                await conn.fetchval("SELECT count(*) FROM ledger_pin_evidence WHERE user_id = $1", user) == 0
            )
        finally:
            await tx.rollback()


async def test_the_user_role_cannot_call_the_gate_functions(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    user = await make_user("500.00", pin="4321")
    for statement in (
        "SELECT * FROM ledger_pin_attempt($1, true)",
        "SELECT ledger_take_pin_evidence($1)",
        "SELECT count(*) FROM ledger_rules WHERE $1::uuid IS NOT NULL",
    ):
        async with acting_as(pool, user) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, user)


async def test_after_grant_all_the_user_role_still_cannot_confirm_past_the_allowance(
    ledger: Ledger, pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    user = await make_user("5000.00", pin="4321")
    await pool.execute("UPDATE profiles SET no_pin_count = 5 WHERE id = $1", user)
    p = await ledger.propose(user, send("100"))
    assert p.needs_pin
    async with pool.acquire() as conn:
        tx = conn.transaction()  # rolled back at the end: the grants never outlive the test
        await tx.start()
        try:
            await conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO authenticated")
            await conn.execute("GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO authenticated")
            await conn.execute("SELECT set_config('role', 'authenticated', true)")
            await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", f'{{"sub": "{user}"}}')
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():  # "my PIN was right", says the attacker
                    await conn.execute("SELECT * FROM ledger_pin_attempt($1, true)", user)
            refusal = await conn.fetchval(
                "SELECT refusal FROM ledger_confirm_or_refusal($1, $2, 1, true, NULL)", p.id, user
            )
            await conn.execute("SELECT set_config('role', 'postgres', true)")
            status = await conn.fetchval("SELECT status FROM transactions WHERE id = $1", p.id)
            assert refusal in ("pin_required", "not_found") and status == "pending"
        finally:
            await tx.rollback()
