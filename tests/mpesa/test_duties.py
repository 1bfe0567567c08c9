"""A round of the M-Pesa background worker runs every duty even when one fails: a payout claim that keeps
failing must not also stop top-ups being pushed. Real PostgreSQL, the simulator over HTTP, the background
loop stopped so the test runs the round."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from ledger.migrate import migrate
from tests.mpesa.conftest import Harness


async def test_a_failing_payout_duty_does_not_stop_the_auto_topup_push(idle: Harness) -> None:
    user = await idle.user(
        "1000.00",
        mpesa_auto_topup=True,
        mpesa_auto_topup_threshold=Decimal("500.00"),
        mpesa_auto_topup_amount=Decimal("2000.00"),
    )
    await idle.confirmed(user, "send_phone", "600", phone="0712345678")  # below 500: an auto top-up queued
    queued = await idle.pool.fetchrow(
        "SELECT id, checkout_request_id FROM mpesa_transactions WHERE user_id = $1 AND kind = 'auto_topup'",
        user,
    )
    assert queued is not None and queued["checkout_request_id"] is None

    # The payout duty now fails every round, as it would if its table could not be read.
    await idle.pool.execute("ALTER TABLE payout_outbox RENAME TO payout_outbox_unreadable")
    try:
        with pytest.raises(ExceptionGroup) as failed:
            await idle.service.run_once()
        assert any(isinstance(e, asyncpg.UndefinedTableError) for e in failed.value.exceptions)
        pushed = await idle.pool.fetchval(
            "SELECT checkout_request_id FROM mpesa_transactions WHERE id = $1", queued["id"]
        )
        assert pushed is not None and pushed in idle.sim.stk  # the top-up's push went out in that round
    finally:
        await idle.pool.execute("ALTER TABLE payout_outbox_unreadable RENAME TO payout_outbox")


async def test_the_worker_command_fails_when_a_duty_of_its_last_round_failed(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    """`ongea-pesa mpesa-worker` runs one round by default: a round whose payout duty failed ends in exit 1
    with the failure in its log (a cron job or supervisor must see it), where the same round on a sound
    database ends in 0."""
    url = await empty_database()
    await migrate(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "DATABASE_URL"))}
    env["ONGEA_DATA_DIR"] = str(tmp_path)
    command = [sys.executable, "-m", "voice_server.cli", "mpesa-worker", "--database-url", url]
    sound = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # noqa: ASYNC221
    assert sound.returncode == 0, sound.stderr

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER TABLE payout_outbox RENAME TO payout_outbox_unreadable")
    finally:
        await conn.close()
    broken = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # noqa: ASYNC221
    assert broken.returncode == 1, broken.stderr
    assert "M-Pesa background round failed" in broken.stderr and "payout_outbox" in broken.stderr
