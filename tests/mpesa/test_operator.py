"""What a person running the service asks M-Pesa (issue 27): the float of the payout shortcodes, and the
reversal of a payout sent to the wrong number, from the CLI, against the simulator and our server over real
HTTP on real PostgreSQL. The harness checks the ledger invariants after each test: a reversal returns the
payout's amount to the sender once, backed by the reversal's receipt, and money stays conserved."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from daraja_sim import Behaviour
from ledger.daraja import client as api
from ledger.daraja.models import ResultEnvelope, account_balances
from ledger.operator_requests import ask_float, reverse_payout
from tests.mpesa.conftest import CALLBACK_SECRET, Harness

ROOT = Path(__file__).parents[2]


async def completed_payout(harness: Harness, user: uuid.UUID, amount: str) -> uuid.UUID:
    tx = await harness.confirmed(user, "send_phone", amount, phone="0712345678")
    row = await harness.settled(tx)
    assert row["status"] == "completed" and row["mpesa_transaction_id"]
    return tx


async def test_the_float_of_the_payout_accounts(harness: Harness) -> None:
    assert harness.service.client is not None
    [answer] = await ask_float(harness.pool, harness.service.client, harness.service.urls, wait=10)
    assert answer.result_code == "0" and answer.shortcode == harness.service.client.config.b2c_shortcode
    # What M-Pesa said (the simulator's balances move as other payouts go out meanwhile).
    [said] = [d.body for d in await harness.sim.delivered(harness.service.urls.balance_result)]
    told = ResultEnvelope.model_validate(said).Result.parameter("AccountBalance")
    assert answer.accounts == account_balances(told)
    assert set(answer.accounts) >= {"Utility Account", "Working Account"}
    assert answer.accounts["Working Account"] > 0


async def test_a_reversal_returns_the_amount_once_and_not_the_fee(harness: Harness) -> None:
    user = await harness.user("5000.00")
    tx = await completed_payout(harness, user, "1200")
    fee = (await harness.tx(tx))["fee"]
    before = await harness.wallet(user)
    assert harness.service.client is not None
    client, urls = harness.service.client, harness.service.urls
    answer = await reverse_payout(harness.pool, client, urls, tx, reason="wrong number", requested_by="ops")
    assert answer.status == "completed", answer
    assert await harness.wallet(user) == before + Decimal("1200")  # the amount, not the fee
    assert fee > 0
    [paid] = harness.sim.payouts_for(str(tx))
    assert paid.reversed
    history = await harness.pool.fetch(
        "SELECT reason, change_amount FROM balance_history WHERE transaction_id = $1 AND reason = 'reversal'",
        tx,
    )
    assert [(r["reason"], r["change_amount"]) for r in history] == [("reversal", Decimal("1200.00"))]
    # Asked again: refused by the ledger, nothing sent, nothing credited.
    with pytest.raises(asyncpg.PostgresError, match="already_requested"):
        await reverse_payout(harness.pool, client, urls, tx, reason="again", requested_by="ops")
    # The result delivered again (a replay) credits nothing more.
    [delivery] = await harness.sim.delivered(urls.reversal_result)
    assert (await harness.post_callback("reversal/result", delivery.body))[0] == 200
    assert await harness.wallet(user) == before + Decimal("1200")


async def test_a_reversal_m_pesa_refuses_credits_nothing(harness: Harness) -> None:
    user = await harness.user("5000.00")
    tx = await completed_payout(harness, user, "1300")
    before = await harness.wallet(user)
    harness.sim.add_rule(Behaviour(outcome="fail", result_code="R000001"), path=api.REVERSAL_PATH, times=1)
    assert harness.service.client is not None
    answer = await reverse_payout(
        harness.pool, harness.service.client, harness.service.urls, tx, reason="wrong", requested_by="ops"
    )
    assert answer.status == "failed" and answer.detail.startswith("R000001")
    assert await harness.wallet(user) == before


async def test_only_a_completed_payout_can_be_reversed(harness: Harness) -> None:
    user = await harness.user("5000.00")
    harness.sim.add_rule(Behaviour(outcome="fail", result_code=1), path=api.B2C_PATH, amount=1400, times=1)
    tx = await harness.confirmed(user, "send_phone", "1400", phone="0712345678")
    assert (await harness.settled(tx))["status"] == "failed"
    assert harness.service.client is not None
    with pytest.raises(asyncpg.PostgresError, match="not_reversible"):
        await reverse_payout(
            harness.pool, harness.service.client, harness.service.urls, tx, reason="x", requested_by="ops"
        )
    assert not harness.sim.requests_to(api.REVERSAL_PATH)


async def test_a_forged_reversal_result_moves_nothing(harness: Harness) -> None:
    user = await harness.user("5000.00")
    await completed_payout(harness, user, "1500")
    before = await harness.wallet(user)
    forged = {
        "Result": {
            "ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": "1-2-3", "ConversationID": "AG_forged", "TransactionID": "SFAKE",
        }
    }  # fmt: skip
    status, _ = await harness.post_callback("reversal/result", forged)
    assert status == 200
    assert await harness.wallet(user) == before
    outcome = await harness.pool.fetchval(
        "SELECT outcome FROM mpesa_callbacks WHERE kind = 'reversal_result' ORDER BY id DESC LIMIT 1"
    )
    assert outcome == "unknown_id"


def cli(harness: Harness, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cert = tmp_path / "sim.cer"
    cert.write_bytes(harness.sim.certificate)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_"))}
    env.update({
        "DARAJA_BASE_URL": harness.sim.base_url, "DARAJA_CONSUMER_KEY": harness.sim.consumer_key or "",
        "DARAJA_CONSUMER_SECRET": harness.sim.consumer_secret or "", "DARAJA_CERTIFICATE_PATH": str(cert),
        "ONGEA_PUBLIC_URL": harness.base_url, "ONGEA_MPESA_CALLBACK_SECRET": CALLBACK_SECRET,
        "ONGEA_DATA_DIR": str(tmp_path / "data"), "ONGEA_LOG_LEVEL": "WARNING",
    })  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args], env=env, capture_output=True, text=True,
        timeout=120, cwd=ROOT,
    )  # fmt: skip


async def test_the_cli_shows_the_float_and_reverses_a_payout(
    harness: Harness, tmp_path: Path, database_url: str
) -> None:
    """The person's path: `ongea-pesa mpesa-float` and `ongea-pesa mpesa-reverse` in their own process."""
    user = await harness.user("5000.00")
    tx = await completed_payout(harness, user, "1600")
    before = await harness.wallet(user)
    shown = await asyncio.to_thread(cli, harness, tmp_path, "mpesa-float", "--database-url", database_url)
    assert shown.returncode == 0, shown.stderr
    assert "Utility Account KES" in shown.stdout and "Working Account KES" in shown.stdout
    done = await asyncio.to_thread(
        cli, harness, tmp_path, "mpesa-reverse", str(tx), "--reason", "sent to 0712345678 by mistake",
        "--by", "amina", "--database-url", database_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    assert await harness.wallet(user) == before + Decimal("1600")
    again = await asyncio.to_thread(
        cli, harness, tmp_path, "mpesa-reverse", str(tx), "--reason", "again", "--by", "amina",
        "--database-url", database_url,
    )  # fmt: skip
    assert again.returncode == 1 and "already_requested" in again.stderr
