"""B2B payouts when the server process is SIGKILLed at the dangerous moments. M-Pesa cannot recognise a B2B
resend as a duplicate, so a B2B request that may have gone out is never sent again: its result (bound to the
payout by its ResultURL) settles it when it comes, and a lost one leaves it parked for a person, never paid
twice and never refunded blindly."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from daraja_sim import Simulator
from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.gate_rules import confirm_as_a_person
from tests.mpesa.conftest import fresh_phone
from tests.serving import FaultProcess, HeldRelay, hold_other_payouts, poll_until


async def _b2b_payout(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID]:
    ledger = Ledger(pool)
    user = (await create_user(pool, fresh_phone(), balance=Decimal("50000"), plan="pro", pin="2580")).user_id
    request = ProposalRequest(type="paybill", amount=Decimal("2500"), paybill="888880", account="CRASH")  # type: ignore[arg-type]
    proposal = await ledger.propose(user, request)
    await confirm_as_a_person(ledger, proposal.id, user, proposal.version, pin="2580")
    return user, proposal.id


# Hang guards only (each wait ends as soon as its condition holds): the restarted process can take tens of
# seconds to start answering on a loaded machine, and a result relayed to it is applied only then.
GUARD = 120.0


async def _status(pool: asyncpg.Pool, tx: uuid.UUID, want: str, limit: float = GUARD) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while (await pool.fetchval("SELECT status FROM transactions WHERE id = $1", tx)) != want:
        assert asyncio.get_running_loop().time() < deadline, f"{tx} never became {want}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("case", ["before_send", "after_send_result_arrives", "after_send_result_lost"])
async def test_a_b2b_payout_survives_sigkill_without_being_paid_twice(
    pool: asyncpg.Pool, crash_env: tuple[Simulator, FaultProcess], case: str
) -> None:
    sim, server = crash_env
    fault = "after_commit_before_send" if case == "before_send" else "after_send_before_record"
    relay = HeldRelay(server.base)
    if case == "after_send_result_arrives":
        # The result comes after the restart: Daraja posts it to a relay that holds it until the server is
        # up again (a result timed to come "6 s later" hit the dead process whenever the restart was slower).
        server.env["ONGEA_PUBLIC_URL"] = await relay.start()
    try:
        user, tx = await _b2b_payout(pool)
        await hold_other_payouts(pool, [tx])
        await server.start(fault)
        assert await server.wait_killed() == -9
        # (idle's limit only guards against a hang: under a loaded machine, a callback posted with the
        # simulator's 10 s timeout can take longer than its default 10 s to be done.)
        if case == "after_send_result_lost":
            await sim.idle(limit=GUARD)  # the result hit the dead process: lost
        if case == "after_send_result_arrives":
            await poll_until("Daraja's result at the relay", lambda: relay.held >= 1, wait=GUARD)
        await server.start(None)
        relay.release()
        if case == "after_send_result_lost":
            # The lease runs out; the restarted worker claims the row again and parks it, never resending.
            async def parked() -> bool:
                status = await pool.fetchval("SELECT status FROM payout_outbox WHERE transaction_id = $1", tx)
                return bool(status == "dead")

            try:
                await poll_until("the payout parked", parked, wait=GUARD)
            except AssertionError as exc:  # what it became instead, and what the restarted server said
                box = await pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)
                raise AssertionError(f"{exc}: {dict(box) if box else None}\n{server.tail()}") from None
            box = await pool.fetchrow("SELECT * FROM payout_outbox WHERE transaction_id = $1", tx)
            assert box["status"] == "dead" and "not resent" in box["last_error"]
            assert (await pool.fetchval("SELECT status FROM transactions WHERE id = $1", tx)) == "processing"
        else:
            await _status(pool, tx, "completed")
        await sim.idle(limit=GUARD)
    finally:
        await relay.stop()
    assert len(sim.payouts_for(str(tx))) == 1
    assert len(sim.sent_payouts(str(tx))) == 1
    reasons = [r["reason"] for r in await pool.fetch(
        "SELECT reason FROM balance_history WHERE transaction_id = $1 ORDER BY seq", tx)]  # fmt: skip
    assert reasons == ["debit", "fee"]  # debited once, never refunded
    server.stop()
    assert await check_invariants(pool, [user]) == []
