"""Business accounts under the grants Supabase gives (every table and function granted to `authenticated` by
default): SQL run as PostgREST runs it for a signed-in member. A member of business A sees nothing of business
B, whatever wallet they name; sees A only as their role allows; and cannot make themselves more."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import asyncpg

from ledger.business import create_business, invite
from ledger.service import Ledger
from ledger.users import create_user
from tests.ledger.conftest import fresh_phone


async def _as(
    db: asyncpg.Pool, user: uuid.UUID, statement: str, *args: object, wallet: uuid.UUID | None = None
) -> list[asyncpg.Record] | str:
    """`statement` as `authenticated` with `user`'s claims (and `ongea.wallet` naming a business), rolled
    back: its rows, or the error's name."""
    async with db.acquire() as conn:
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute(
                "SELECT set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', $1, true), set_config('ongea.wallet', $2, true)",
                json.dumps({"sub": str(user), "role": "authenticated"}),
                str(wallet) if wallet else "",
            )
            return list(await conn.fetch(statement, *args))
        except asyncpg.PostgresError as exc:
            return type(exc).__name__
        finally:
            await tr.rollback()


async def _team(db: asyncpg.Pool, name: str) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:
    """A business with an owner, a spender and a viewer; a proposal by the spender and one by the owner."""
    people = {
        role: (await create_user(db, fresh_phone(), balance=Decimal("100"), plan=plan, pin="4826"))
        for role, plan in (("owner", "business"), ("spender", "free"), ("viewer", "free"))
    }
    business = (await create_business(db, people["owner"].user_id, name, None))["id"]
    for role in ("spender", "viewer"):
        await invite(
            db, business, people["owner"].user_id, people[role].phone, role, Decimal(5000), Decimal(5000)
        )
    ledger = Ledger(db)
    checkout = "ws_CO_" + uuid.uuid4().hex[:12]
    await ledger.record_topup_request(business, Decimal(9000), "254700000001", checkout, None)
    await ledger.credit_topup(
        checkout, success=True, amount=Decimal(9000), receipt="RB" + uuid.uuid4().hex[:8]
    )
    for maker in ("spender", "owner"):
        await db.fetchrow(
            "SELECT * FROM business_propose($1, $2, 'send_phone', 100, '254711222333',"
            " '', '', '', '', '', '', NULL, NULL, NULL)",
            business,
            people[maker].user_id,
        )
    return business, {role: p.user_id for role, p in people.items()}


async def test_a_member_of_business_a_sees_nothing_of_business_b(supabase_pool: asyncpg.Pool) -> None:
    a, team_a = await _team(supabase_pool, "Duka A")
    b, team_b = await _team(supabase_pool, "Duka B")
    for role, member in team_a.items():
        for wallet in (None, a, b):
            for statement in (
                "SELECT id FROM transactions WHERE user_id = $1",
                "SELECT id FROM balance_history WHERE user_id = $1",
                "SELECT id FROM profiles WHERE id = $1",
                "SELECT id FROM businesses WHERE id = $1",
                "SELECT id FROM business_members WHERE business_id = $1",
                "SELECT id FROM voice_sessions WHERE wallet_id = $1",
            ):
                assert await _as(supabase_pool, member, statement, b, wallet=wallet) == [], (
                    role,
                    wallet,
                    statement,
                )
            # Nor by asking the role functions about B.
            seen = await _as(
                supabase_pool,
                member,
                "SELECT business_member_role($1) r, business_reader_role($1) w",
                b,
                wallet=b,
            )
            assert not isinstance(seen, str) and (seen[0]["r"], seen[0]["w"]) == (None, None)
    assert team_b  # (B's team is there, unseen)


async def test_each_role_sees_its_own_business_as_the_role_allows(supabase_pool: asyncpg.Pool) -> None:
    a, team = await _team(supabase_pool, "Duka C")

    async def count(member: uuid.UUID, statement: str, wallet: uuid.UUID | None = a) -> int:
        rows = await _as(supabase_pool, member, statement, a, wallet=wallet)
        assert not isinstance(rows, str), rows
        return len(rows)

    payments = "SELECT id FROM transactions WHERE user_id = $1"
    history = "SELECT id FROM balance_history WHERE user_id = $1"
    assert await count(team["owner"], payments) == 2
    assert await count(team["viewer"], payments) == 2
    assert await count(team["spender"], payments) == 1  # their own
    assert await count(team["spender"], history) == 0
    assert await count(team["viewer"], history) == 2  # the opening row and the top-up
    # Without the wallet named, a member's reads are their own rows only (the app's own reads unchanged).
    assert await count(team["owner"], payments, wallet=None) == 0
    assert await count(team["owner"], "SELECT id FROM profiles WHERE id <> $1", wallet=None) == 1
    # The team: the owner and viewer see all three, the spender their own membership.
    members = "SELECT id FROM business_members WHERE business_id = $1"
    assert await count(team["owner"], members, wallet=None) == 3
    assert await count(team["spender"], members, wallet=None) == 1


async def test_a_member_cannot_raise_their_limit_or_make_themselves_admin_with_sql(
    supabase_pool: asyncpg.Pool,
) -> None:
    a, team = await _team(supabase_pool, "Duka D")
    spender = team["spender"]
    for statement in (
        "UPDATE business_members SET daily_limit = 250000, approval_amount = 250000 WHERE user_id = $1",
        "UPDATE business_members SET role = 'admin' WHERE user_id = $1",
        "INSERT INTO business_members (business_id, phone, user_id, role)"
        " SELECT business_id, '254700000009', $1, 'admin' FROM business_members WHERE user_id = $1",
        "DELETE FROM business_members WHERE user_id = $1",
        "UPDATE transactions SET approval_state = 'approved', approved_by = $1 WHERE made_by = $1",
        "SELECT business_member_change(business_id, $1, id, 'admin', 250000, 250000) FROM business_members"
        " WHERE user_id = $1",
        "SELECT business_invite(business_id, user_id, '254700000010', 'admin', 1, 1) FROM business_members"
        " WHERE user_id = $1",
    ):
        outcome = await _as(supabase_pool, spender, statement, spender, wallet=a)
        assert outcome == "InsufficientPrivilegeError", (statement, outcome)
    row = await supabase_pool.fetchrow(
        "SELECT role, daily_limit FROM business_members WHERE user_id = $1 AND business_id = $2", spender, a
    )
    assert (row["role"], row["daily_limit"]) == ("spender", Decimal("5000.00"))
