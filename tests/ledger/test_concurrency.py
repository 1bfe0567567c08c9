"""The bank test: many workers hammer 20 wallets (one hot) with proposals, corrections, double and triple
confirmations sent at once, cancels racing confirms, expiries, duplicate settlements and top-up callbacks.
Afterwards every invariant of ledger.md must hold, checked by SQL (`ledger.invariants`)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from decimal import Decimal

import asyncpg

from ledger.invariants import check_invariants
from ledger.models import ConfirmResult, LedgerError, ProposalRequest
from ledger.service import Ledger
from tests.gate_rules import NO_GATE, gate_rules

from .conftest import MakeUser

WORKERS = 16
PROPOSALS = 2400
USERS = 20

# Refusals that a busy, racing client may legitimately get; anything else fails the test.
EXPECTED = {
    "insufficient_balance",
    "daily_limit",
    "monthly_limit",
    "cancelled",
    "expired",
    "already_confirmed",
    "stale_version",
}


def _request(rng: random.Random) -> ProposalRequest:
    amount = Decimal(rng.randrange(10, 400))  # whole shillings: M-Pesa moves no cents
    kind = rng.random()
    if kind < 0.5:
        return ProposalRequest.build(type="send_phone", amount=amount, phone="0712345678")
    if kind < 0.7:
        return ProposalRequest.build(type="buy_goods_till", amount=amount, till="123456")
    if kind < 0.85:
        return ProposalRequest.build(type="paybill", amount=amount, paybill="888880", account="ACC42")
    if kind < 0.93:
        return ProposalRequest.build(
            type="withdraw", amount=max(amount, Decimal(50)), agent="12345", store="7"
        )
    return ProposalRequest.build(type="bank_to_mpesa", amount=amount, bank_code="68")


async def test_bank_style_concurrency_keeps_every_invariant(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    # Who may spend is not what this test is about (tests/ledger/test_gate.py races it): its client pays
    # thousands of times without a PIN, so the gate is opened for it.
    async with gate_rules(pool, **NO_GATE):
        await _bank_style_concurrency(pool, make_user)


async def _bank_style_concurrency(pool: asyncpg.Pool, make_user: MakeUser) -> None:
    hot = await make_user("150000.00", plan="business")
    users = [hot]
    for i in range(USERS - 1):
        plan = "free" if i < 2 else ("basic" if i < 6 else "pro")
        users.append(await make_user(f"{random.randrange(2000, 20000)}.00", plan=plan))
    free_users = users[1:3]
    ledger = Ledger(pool)
    quick = Ledger(pool, proposal_ttl_seconds=1)  # proposals that expire while the user hesitates

    errors: Counter[str] = Counter()
    unexpected: list[str] = []
    confirmed_ids: list[uuid.UUID] = []
    outcomes: Counter[str] = Counter()
    todo = iter(range(PROPOSALS))
    stop_sweeper = asyncio.Event()

    def refused(exc: LedgerError) -> None:
        errors[exc.code] += 1
        if exc.code not in EXPECTED:
            unexpected.append(f"{exc.code}: {exc.message}")

    async def attempt_confirm(
        tx: uuid.UUID, user: uuid.UUID, version: int, voice: bool
    ) -> ConfirmResult | None:
        try:
            return await ledger.confirm(tx, user, version, voice_verified=voice)
        except LedgerError as exc:
            refused(exc)
            return None

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in todo:
            user = hot if rng.random() < 0.6 else rng.choice(users[1:])
            expiring = rng.random() < 0.04
            try:
                p = await (quick if expiring else ledger).propose(user, _request(rng))
            except LedgerError as exc:
                refused(exc)
                continue
            version = 1
            if rng.random() < 0.1:
                try:
                    version = (await ledger.revise(p.id, user, _request(rng))).version
                except LedgerError as exc:
                    refused(exc)
            if expiring:
                await asyncio.sleep(rng.uniform(0.5, 1.5))
            roll = rng.random()
            if roll < 0.08:
                try:
                    await ledger.cancel(p.id, user, "user said no")
                except LedgerError as exc:
                    refused(exc)
                continue
            # The same confirmation sent two or three times at once (a tap and a spoken yes, a retry) ...
            copies = rng.choice((2, 3))
            calls = [attempt_confirm(p.id, user, version, i == 0) for i in range(copies)]
            if roll < 0.13:  # ... racing a cancel,
                calls.append(ledger.cancel(p.id, user, "changed my mind"))  # type: ignore[arg-type]
            if roll > 0.97 and version > 1:  # ... or a confirmation of the version before a correction.
                calls.append(attempt_confirm(p.id, user, version - 1, True))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for r in results:
                if isinstance(r, LedgerError):
                    refused(r)
                elif isinstance(r, BaseException):
                    raise r
            won = [r for r in results if isinstance(r, ConfirmResult) and r.outcome == "confirmed"]
            for r in results:
                if isinstance(r, ConfirmResult):
                    outcomes[r.outcome] += 1
            assert len(won) <= 1
            if not won:
                continue
            confirmed_ids.append(p.id)
            fate = rng.random()
            if fate < 0.15:
                continue  # still in flight at the end
            success = fate < 0.75
            if won[0].type == "bank_to_mpesa":
                if not success:
                    continue  # no deposit arrives: it waits for its 24 hours
                # The deposit's C2B confirmation, delivered once or twice at once: credited once.
                trans_id = f"C2B{seed}{uuid.uuid4().hex[:10]}"
                ref = str(won[0].account_reference)
                deposits = [
                    ledger.credit_c2b(trans_id=trans_id, bill_ref=ref, amount=p.amount)
                    for _ in range(rng.choice((1, 2)))
                ]
                got_c2b = await asyncio.gather(*deposits)
                assert sorted(got_c2b) == sorted(["credited"] + ["already_recorded"] * (len(got_c2b) - 1))
                continue
            settles = [
                ledger.settle(p.id, success=success, receipt=f"R{seed}{rng.random()}", error="declined")
                for _ in range(rng.choice((1, 2)))
            ]
            got = await asyncio.gather(*settles)
            assert sorted(got) == sorted(
                ["completed" if success else "failed"] + ["already_settled"] * (len(got) - 1)
            )
            if rng.random() < 0.05:  # a top-up with its duplicate callbacks
                checkout = f"ws_CO_{uuid.uuid4().hex}"
                await ledger.record_topup_request(user, Decimal("300"), "0712345678", checkout, None)
                credited = await asyncio.gather(
                    *(
                        ledger.credit_topup(checkout, success=True, amount=Decimal("300"), receipt="T")
                        for _ in "ab"
                    )
                )
                assert sorted(credited) == ["already_settled", "credited"]

    async def sweeper() -> None:
        while not stop_sweeper.is_set():
            await ledger.expire_due()
            await asyncio.sleep(0.2)

    started = time.monotonic()
    sweeping = asyncio.create_task(sweeper())
    await asyncio.gather(*(worker(seed) for seed in range(WORKERS)))
    stop_sweeper.set()
    await sweeping
    elapsed = time.monotonic() - started

    assert unexpected == []
    assert await check_invariants(pool, users) == []
    # Each proposal that reached processing was won by exactly one confirmation.
    reached = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE user_id = ANY($1::uuid[]) AND confirmed_at IS NOT NULL",
        users,
    )
    assert reached == len(confirmed_ids) == len(set(confirmed_ids)) == outcomes["confirmed"]
    assert outcomes["already_confirmed"] >= len(confirmed_ids)  # every duplicate was answered, not refused
    # Free plans stayed within their 5 a month, however many confirmations raced.
    for user in free_users:
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM transactions WHERE user_id = $1 AND confirmed_at IS NOT NULL", user
            )
            <= 5
        )
    hot_share = await pool.fetchval("SELECT count(*) FROM transactions WHERE user_id = $1", hot)
    assert hot_share > PROPOSALS / 3
    assert len(confirmed_ids) > PROPOSALS / 2
    print(
        f"\n{PROPOSALS} proposals, {len(confirmed_ids)} confirmed in {elapsed:.1f}s; refusals {dict(errors)}"
    )
