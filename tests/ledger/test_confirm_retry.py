"""`ledger_confirm` draws a new deposit reference when the one it drew is taken, and only then: any other
uniqueness it breaks is raised at once, not retried forever (issue 19)."""

from __future__ import annotations

import asyncpg
import pytest

from ledger.models import ProposalRequest
from ledger.service import Ledger
from tests.ledger.conftest import MakeUser

PROBE = "confirm_retry_probe_one_deposit_per_user"


async def test_a_unique_violation_other_than_the_reference_is_raised_not_retried(
    ledger: Ledger, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user("0.00", plan="basic")
    first = await ledger.propose(
        user, ProposalRequest.build(type="bank_to_mpesa", amount="1000", bank_code="68")
    )
    await ledger.confirm(first.id, user, 1, voice_verified=True)
    second = await ledger.propose(
        user, ProposalRequest.build(type="bank_to_mpesa", amount="500", bank_code="68")
    )

    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.UniqueViolationError) as raised:
            async with conn.transaction():  # rolled back: the probe index never outlives the test
                # A uniqueness no drawn reference can satisfy: one expected deposit for this user.
                await conn.execute(
                    f"CREATE UNIQUE INDEX {PROBE} ON c2b_expected_deposits (user_id) WHERE user_id = '{user}'"
                )
                # Before the fix this looped forever; the timeout turns a regression into a failure.
                await conn.execute("SET LOCAL statement_timeout = '20s'")
                await conn.fetchval("SELECT ledger_confirm($1, $2, 1, true, NULL)", second.id, user)
        assert raised.value.constraint_name == PROBE
        assert await conn.fetchval("SELECT to_regclass($1)", f"public.{PROBE}") is None

    # Nothing changed: the proposal is still there to confirm, and it confirms.
    assert (await ledger.get_transaction(second.id)).status == "pending"  # type: ignore[union-attr]
    done = await ledger.confirm(second.id, user, 1, voice_verified=True)
    assert done.status == "processing" and done.account_reference is not None
