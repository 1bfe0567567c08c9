"""The order in which a team's requests take their locks: the person acting, then memberships, then the
wallet, then the payment. Each test holds the first lock of one request while another request by the same
person starts, as two devices of one owner do, and checks that both finish. Taken in another order,
PostgreSQL finds a deadlock and refuses one of them. CI saw it: an owner's proposal against the same owner's
removal of a member, whose `removed_by` key-shares the owner's profile after the membership locks."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from ledger.business import BusinessLedger, Wallet, create_business, invite, remove_member
from ledger.models import ProposalRequest, TransactionType
from ledger.pins import check_user_pin
from ledger.service import Ledger

from .conftest import MakeUser, fresh_phone

PIN = "4826"


async def _team(pool: asyncpg.Pool, make_user: MakeUser) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    """A funded business wallet, its owner, and a spender (user, membership) whose payments above KES 300
    wait for approval."""
    ledger = Ledger(pool)
    owner = await make_user("1000.00", plan="business", pin=PIN)
    business = (await create_business(pool, owner, "Duka", None))["id"]
    checkout = "ws_CO_" + uuid.uuid4().hex[:16]
    await ledger.record_topup_request(business, Decimal(5000), "254700000001", checkout, None)
    await ledger.credit_topup(checkout, success=True, amount=Decimal(5000), receipt="RC" + checkout[-8:])
    spender = await make_user("500.00", plan="free", pin=PIN)
    phone = await pool.fetchval("SELECT phone_number FROM profiles WHERE id = $1", spender)
    member = await invite(pool, business, owner, phone, "spender", Decimal(6000), Decimal(300))
    return business, owner, spender, member["id"]


async def _waiting_on_a_lock(pool: asyncpg.Pool, function: str) -> None:
    for _ in range(250):
        if await pool.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1""",
            f"%{function}%",
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{function} never waited for a lock")


async def test_an_owner_approving_while_removing_the_maker_finishes_both(
    pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    business, owner, spender, member = await _team(pool, make_user)
    books = BusinessLedger(Ledger(pool), Wallet(business, "Duka", "", ""), spender)
    proposal = await books.propose(
        ProposalRequest.build(type=TransactionType.SEND_PHONE, amount=Decimal(900), phone=fresh_phone())
    )
    waiting = await books.confirm(proposal.id, proposal.version, voice_verified=True)
    assert waiting["outcome"] == "awaiting_approval"

    # The approval has checked the owner's PIN (the owner's profile is locked) when the removal, sent from
    # the owner's other device, starts; then the approval goes on.
    async with pool.acquire() as conn, conn.transaction():
        assert (await check_user_pin(conn, owner, PIN)).outcome == "ok"
        removal = asyncio.create_task(remove_member(pool, business, owner, member))
        await _waiting_on_a_lock(pool, "business_member_remove")
        approved = await conn.fetchval("SELECT business_decide($1, $2, true)", proposal.id, owner)
    removed = await removal

    assert approved["outcome"] == "approved"
    assert removed["removed_at"] is not None
    status = await pool.fetchval("SELECT status FROM transactions WHERE id = $1", proposal.id)
    assert status == "processing"  # approved before the removal: paid, not voided


@pytest.mark.parametrize("management", ["business_member_remove", "business_invite"])
async def test_an_owner_paying_while_managing_the_team_finishes_both(
    pool: asyncpg.Pool, make_user: MakeUser, management: str
) -> None:
    business, owner, _, member = await _team(pool, make_user)
    newcomer = fresh_phone()

    async def manage() -> asyncpg.Record:
        if management == "business_member_remove":
            return await remove_member(pool, business, owner, member)
        return await invite(pool, business, owner, newcomer, "spender", Decimal(1000), Decimal(300))

    # The owner's proposal has taken its first lock (the owner's profile, as the PIN check of the app's
    # payment does) when the change to the team starts; then the owner proposes and confirms from the wallet.
    books = BusinessLedger(Ledger(pool), Wallet(business, "Duka", "", ""), owner)
    async with pool.acquire() as conn, conn.transaction():
        assert (await check_user_pin(conn, owner, PIN)).outcome == "ok"
        change = asyncio.create_task(manage())
        await _waiting_on_a_lock(pool, management)
        row = await conn.fetchrow(
            """SELECT * FROM business_propose($1, $2, 'send_phone', 250, $3, NULL, NULL, NULL, NULL, NULL,
                                              NULL, 95, 'tuma mia mbili hamsini', NULL)""",
            business,
            owner,
            fresh_phone(),
        )
    changed = await change
    assert row is not None and row["made_by"] == owner
    answer = await books.confirm(row["id"], row["version"], voice_verified=True)
    assert answer["outcome"] == "confirmed"
    if management == "business_member_remove":
        assert changed["removed_at"] is not None
    else:
        assert changed["phone"] == newcomer and changed["invited_by"] == owner
