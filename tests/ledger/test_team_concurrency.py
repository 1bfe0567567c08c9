"""The invariants with team payments and API payments mixed under concurrency: spenders and admins of two
business wallets pay at once (confirmations sent twice), payments above the approval amount are approved,
rejected and expired while others race them, a member is removed mid-way, API keys pay trusted payees with
retried Idempotency-Keys from the owner's own wallet, and the gateway settles (some payouts fail and are
refunded). Afterwards every invariant of ledger.md holds, and every decision was taken once."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from decimal import Decimal

import asyncpg

from ledger.business import BusinessLedger, Wallet, create_business, decide, invite, remove_member
from ledger.invariants import check_invariants
from ledger.models import LedgerError, ProposalRequest, TransactionType
from ledger.pins import check_user_pin
from ledger.service import Ledger
from tests.gate_rules import NO_GATE, gate_rules

from .conftest import MakeUser, fresh_phone

PIN = "4826"
ROUNDS = 120
# Refusals a busy team may legitimately get; anything else fails the test.
EXPECTED = {
    "insufficient_balance",
    "spender_daily_limit",
    "already_decided",
    "already_confirmed",
    "not_a_member",
    "not_found",
    "cancelled",
    "expired",
    "member_removed",
}


async def _fund(ledger: Ledger, wallet: uuid.UUID, amount: int) -> None:
    checkout = "ws_CO_" + uuid.uuid4().hex[:16]
    await ledger.record_topup_request(wallet, Decimal(amount), "254700000001", checkout, None)
    assert await ledger.credit_topup(
        checkout, success=True, amount=Decimal(amount), receipt="RC" + checkout[-8:]
    ) == ("credited")


async def _with_pin(pool: asyncpg.Pool, user: uuid.UUID, query: str, *args: object) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        assert (await check_user_pin(conn, user, PIN)).outcome == "ok"
        row = await conn.fetchrow(query, *args)
        assert row is not None
        return row


async def test_invariants_hold_with_team_and_api_payments_mixed_under_concurrency(
    pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    # Who may spend by PIN is tested elsewhere: the members pay many times without typing it.
    async with gate_rules(pool, **NO_GATE):
        await _mixed(pool, make_user)


async def _mixed(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    ledger = Ledger(pool)
    rng = random.Random(23)
    teams: list[tuple[uuid.UUID, uuid.UUID, list[uuid.UUID], list[uuid.UUID]]] = []
    for name in ("Duka One", "Duka Two"):
        owner = await make_user("1000.00", plan="business", pin=PIN)
        business = (await create_business(pool, owner, name, None))["id"]
        await _fund(ledger, business, 40000)
        admins, spenders = [], []
        for role, bucket in (
            ("admin", admins),
            ("spender", spenders),
            ("spender", spenders),
            ("spender", spenders),
        ):
            person = await make_user("500.00", plan="free", pin=PIN)
            phone = await pool.fetchval("SELECT phone_number FROM profiles WHERE id = $1", person)
            await invite(pool, business, owner, phone, role, Decimal(6000), Decimal(300))
            bucket.append(person)
        teams.append((business, owner, admins, spenders))
    # An API payer: a Pro user's pay key and a trusted payee.
    api_user = await make_user("30000.00", plan="pro", pin=PIN)
    key = await _with_pin(
        pool,
        api_user,
        "SELECT * FROM api_key_create($1, 'till', ARRAY['read', 'pay'], $2, 'op_live_test', 100000, 10000)",
        api_user,
        uuid.uuid4().hex + uuid.uuid4().hex,
    )
    payee = fresh_phone()
    await _with_pin(
        pool, api_user, "SELECT * FROM trusted_payee_confirm($1, $2, 'Supplier')", api_user, payee
    )

    unexpected: list[str] = []
    outcomes: Counter[str] = Counter()
    waiting: list[tuple[uuid.UUID, uuid.UUID]] = []  # (transaction, business)

    def refused(exc: LedgerError) -> None:
        outcomes["refused:" + exc.code] += 1
        if exc.code not in EXPECTED:
            unexpected.append(f"{exc.code}: {exc.message}")

    async def team_payment(seed: int) -> None:
        r = random.Random(seed)
        business, _, admins, spenders = r.choice(teams)
        member = r.choice(spenders + admins)
        books = BusinessLedger(Ledger(pool), Wallet(business, "Duka", "", ""), member)
        request = ProposalRequest.build(
            type=TransactionType.SEND_PHONE,
            amount=Decimal(r.choice((50, 120, 250, 400, 900))),
            phone=fresh_phone(),
        )
        try:
            proposal = await books.propose(request)
            answers = await asyncio.gather(
                *(books.confirm(proposal.id, proposal.version, voice_verified=True) for _ in range(2)),
                return_exceptions=True,
            )
        except LedgerError as exc:
            refused(exc)
            return
        for answer in answers:
            if isinstance(answer, LedgerError):
                refused(answer)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                outcomes[answer["outcome"]] += 1
        if any(isinstance(a, dict) and a["outcome"] == "awaiting_approval" for a in answers):
            waiting.append((proposal.id, business))

    async def decision(seed: int) -> None:
        r = random.Random(seed)
        if not waiting:
            return
        tx, business = r.choice(waiting)
        team = next(t for t in teams if t[0] == business)
        deciders = [team[1], *team[2]]
        calls = [decide(pool, tx, r.choice(deciders), approve=r.random() < 0.6, pin=PIN) for _ in range(2)]
        if r.random() < 0.2:
            await pool.execute("UPDATE transactions SET expires_at = now() WHERE id = $1", tx)
        for answer in await asyncio.gather(
            *calls, pool.fetchval("SELECT sweep_expire_proposals(50)"), return_exceptions=True
        ):
            if isinstance(answer, LedgerError):
                refused(answer)
            elif isinstance(answer, BaseException):
                raise answer
            elif isinstance(answer, dict):
                outcomes["decided:" + answer["outcome"]] += 1

    async def api_payment(seed: int) -> None:
        r = random.Random(seed)
        idem = f"idem-{seed % 40}"  # retried keys: the same key and body pay once
        amount = Decimal(100 + (seed % 40))
        answers = await asyncio.gather(
            *(
                pool.fetchval(
                    "SELECT api_pay($1, $2, $3, $4, $5, NULL)", key["id"], idem, f"h{amount}", payee, amount
                )
                for _ in range(r.choice((1, 2, 3)))
            )
        )
        for answer in answers:
            body = json.loads(answer) if isinstance(answer, str) else answer
            outcomes[f"api:{body['status']}"] += 1

    async def settle(seed: int) -> None:
        r = random.Random(seed)
        rows = await pool.fetch(
            "SELECT id FROM transactions WHERE status = 'processing' ORDER BY random() LIMIT 3"
        )
        for row in rows:
            await ledger.settle(row["id"], success=r.random() < 0.8, receipt="RS" + row["id"].hex[:8])

    async def worker(seed: int) -> None:
        r = random.Random(seed)
        for i in range(ROUNDS // 8):
            roll = r.random()
            job = (
                team_payment
                if roll < 0.5
                else decision
                if roll < 0.7
                else api_payment
                if roll < 0.85
                else settle
            )
            await job(seed * 1000 + i)

    removal = teams[0]

    async def remove_one() -> None:
        await asyncio.sleep(0.5)
        row = await pool.fetchrow(
            "SELECT id FROM business_members WHERE business_id = $1 AND user_id = $2",
            removal[0],
            removal[3][0],
        )
        await remove_member(pool, removal[0], removal[1], row["id"])

    await asyncio.gather(*(worker(rng.randrange(10**6)) for _ in range(8)), remove_one())
    await pool.execute(
        "UPDATE transactions SET expires_at = now() WHERE approval_state = 'awaiting' AND user_id = ANY($1)",
        [t[0] for t in teams],
    )
    await pool.fetchval("SELECT sweep_expire_proposals(500)")

    assert unexpected == [], unexpected
    assert outcomes["confirmed"] > 0 and outcomes["awaiting_approval"] > 0 and outcomes["api:201"] > 0, (
        outcomes
    )
    wallets = [t[0] for t in teams] + [api_user] + [p for t in teams for p in (t[1], *t[2], *t[3])]
    assert await check_invariants(pool, wallets) == []
    # Each waiting payment was decided once: approved ones debited once, others never.
    rows = await pool.fetch(
        """SELECT t.approval_state, t.status,
                  (SELECT count(*) FROM balance_history b
                   WHERE b.transaction_id = t.id AND b.reason = 'debit') AS d
           FROM transactions t WHERE t.user_id = ANY($1) AND t.approval_state IS NOT NULL""",
        [t[0] for t in teams],
    )
    for row in rows:
        assert row["approval_state"] != "awaiting", dict(row)
        assert row["d"] == (1 if row["approval_state"] == "approved" else 0), dict(row)
        assert (row["status"] == "cancelled") == (row["approval_state"] != "approved"), dict(row)
    # The removed spender's payments after the removal were refused; nobody paid from a business they left.
    after = await pool.fetchval(
        """SELECT count(*) FROM transactions t JOIN business_members m
               ON m.business_id = t.user_id AND m.user_id = t.made_by
           WHERE m.removed_at IS NOT NULL AND t.confirmed_at > m.removed_at AND t.approved_by IS NULL""",
    )
    assert after == 0
