"""The payout outbox worker: sends confirmed transactions to M-Pesa, exactly once, and reconciles them.

`ledger_confirm` writes a `payout_outbox` row in the same database transaction as the debit; this worker
sends it afterwards, never inside that transaction. Claiming takes a short lease (`FOR UPDATE SKIP LOCKED`,
then `next_attempt_at` pushed past the lease) and commits before the gateway is called, so no lock is held
across the network and a crashed worker's row becomes due again when the lease runs out.

Exactly once rests on the transaction id being the `OriginatorConversationID`: a resend after a crash or a
lost answer is refused by Daraja as a duplicate, which we read as "already sent". A missing callback is
unknown, not failed: once a payout has been out for `reconcile_after` seconds, a Transaction Status query
asks M-Pesa, and its result callback settles the payout like a result callback would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from intents.banks import bank_paybill
from ledger.bank import BankAdapter, SimulatedBank
from ledger.daraja.client import (
    DarajaClient,
    DarajaDuplicate,
    DarajaRejected,
    DarajaTransientError,
)
from ledger.daraja.models import AcceptedResponse
from ledger.service import Ledger

log = logging.getLogger(__name__)

FAULT_ENV = "ONGEA_FAULT"


# CBK bank code -> the bank's M-Pesa paybill (ledger.md). `intents.banks` holds the full directory and is
# preferred when present; this table is the fallback so payouts never depend on the parser's data.
def fault_point(name: str) -> None:
    """Crash-test hook: when `ONGEA_FAULT` names this point, the process kills itself with SIGKILL here.

    Inert unless that environment variable is set; it exists so tests can prove that a crash at the two
    dangerous moments (ledger committed / gateway accepted) neither loses nor doubles a payout.
    """
    if os.environ.get(FAULT_ENV) == name:
        log.critical("fault injection: SIGKILL at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class CallbackUrls:
    """Where Daraja posts results; the base carries the secret path segment."""

    base: str

    @property
    def payout_result(self) -> str:
        return f"{self.base}/payout/result"

    @property
    def payout_timeout(self) -> str:
        return f"{self.base}/payout/timeout"

    @property
    def status_result(self) -> str:
        return f"{self.base}/status/result"

    @property
    def status_timeout(self) -> str:
        return f"{self.base}/status/timeout"

    @property
    def stk(self) -> str:
        return f"{self.base}/stk"


@dataclass(frozen=True)
class PayoutConfig:
    urls: CallbackUrls
    reconcile_after: float = 60.0
    lease_seconds: float = 60.0
    max_attempts: int = 10
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    batch: int = 8


@dataclass(frozen=True)
class PayoutJob:
    outbox_id: int
    transaction_id: uuid.UUID
    kind: str
    attempts: int
    type: str
    amount: Decimal
    phone: str
    till: str
    paybill: str
    account: str
    bank_code: str
    user_phone: str


_CLAIM = """
WITH due AS (
    SELECT id FROM payout_outbox
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE payout_outbox o
SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM due
WHERE o.id = due.id
RETURNING o.id
"""

_JOB = """
SELECT o.id AS outbox_id, o.transaction_id, o.kind, o.attempts, t.type, t.amount, t.phone, t.till, t.paybill,
       t.account, t.bank_code, coalesce(nullif(p.mpesa_number, ''), p.phone_number) AS user_phone,
       t.status AS tx_status
FROM payout_outbox o
JOIN transactions t ON t.id = o.transaction_id
JOIN profiles p ON p.id = t.user_id
WHERE o.id = ANY($1::bigint[])
ORDER BY o.id
"""


def backoff(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (attempts counts from 1)."""
    ceiling: float = min(cap, base * 2.0 ** max(0, attempts - 1))
    return random.uniform(0.5, 1.0) * ceiling


class PayoutWorker:
    """Sends due outbox rows and reconciles stale ones; safe to run in several processes at once."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: DarajaClient,
        config: PayoutConfig,
        *,
        ledger: Ledger | None = None,
        bank: BankAdapter | None = None,
    ) -> None:
        self.pool = pool
        self.client = client
        self.config = config
        self.ledger = ledger or Ledger(pool)
        self.bank = bank or SimulatedBank()

    # --- sending ---------------------------------------------------------------------------------------

    async def send_due(self) -> int:
        """Claim and send what is due now; returns how many rows were handled."""
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [r["id"] for r in await conn.fetch(_CLAIM, self.config.batch, self.config.lease_seconds)]
        if not ids:
            return 0
        rows = await self.pool.fetch(_JOB, ids)
        await asyncio.gather(*(self._handle(row) for row in rows))
        return len(rows)

    async def _handle(self, row: asyncpg.Record) -> None:
        job = PayoutJob(**{k: row[k] for k in PayoutJob.__dataclass_fields__})
        if row["tx_status"] != "processing":
            # Settled meanwhile (e.g. by a callback that overtook the answer): nothing to send.
            await self.pool.execute(
                "UPDATE payout_outbox SET status = 'settled', settled_at = coalesce(settled_at, now()) "
                "WHERE id = $1 AND status = 'pending'",
                job.outbox_id,
            )
            return
        try:
            if job.kind == "bank_credit":
                await self._bank_credit(job)
            else:
                await self._send(job)
        except Exception:  # a bug must not stop the worker; the lease makes the row due again
            log.exception("payout %s: unexpected error", job.transaction_id)

    async def _send(self, job: PayoutJob) -> None:
        fault_point("after_commit_before_send")
        try:
            accepted = await self._request(job)
        except DarajaDuplicate as exc:
            log.info("payout %s: Daraja says already sent (%s)", job.transaction_id, exc)
            await self._mark_sent(job, None, "duplicate OriginatorConversationID: already sent")
            return
        except DarajaTransientError as exc:
            await self._retry_later(job, str(exc))
            return
        except DarajaRejected as exc:
            await self._rejected(job, str(exc))
            return
        fault_point("after_send_before_record")
        await self._mark_sent(job, accepted.ConversationID or None, None)

    async def _request(self, job: PayoutJob) -> AcceptedResponse:
        urls = self.config.urls
        common: dict[str, Any] = {
            "originator_conversation_id": str(job.transaction_id),
            "amount": job.amount,
            "result_url": urls.payout_result,
            "timeout_url": urls.payout_timeout,
        }
        remarks = f"Ongea Pesa {job.type}"
        if job.type == "send_phone":
            return await self.client.b2c(
                phone=job.phone, remarks=remarks, command="BusinessPayment", **common
            )
        if job.type == "withdraw":
            # Daraja has no agent cash-out: the money goes to the user's own M-Pesa number.
            return await self.client.b2c(
                phone=job.user_phone, remarks=remarks, command="BusinessPayment", **common
            )
        if job.type == "buy_goods_pochi":
            return await self.client.b2pochi(phone=job.phone, remarks=remarks, **common)
        if job.type == "buy_goods_till":
            return await self.client.b2b(
                command="BusinessBuyGoods",
                party_b=job.till,
                account_reference=job.till,
                requester=job.user_phone,
                remarks=remarks,
                **common,
            )
        if job.type == "paybill":
            return await self.client.b2b(
                command="BusinessPayBill",
                party_b=job.paybill,
                account_reference=job.account,
                requester=job.user_phone,
                remarks=remarks,
                **common,
            )
        if job.type == "mpesa_to_bank":
            paybill = bank_paybill(job.bank_code)
            if paybill is None:
                raise DarajaRejected(f"no M-Pesa paybill known for bank code {job.bank_code!r}")
            return await self.client.b2b(
                command="BusinessPayBill",
                party_b=paybill,
                account_reference=job.account,
                requester=job.user_phone,
                remarks=remarks,
                **common,
            )
        raise DarajaRejected(f"no Daraja request for transaction type {job.type!r}")

    async def _mark_sent(self, job: PayoutJob, conversation_id: str | None, note: str | None) -> None:
        await self.pool.execute(
            """UPDATE payout_outbox
               SET status = 'sent', sent_at = coalesce(sent_at, now()), last_error = $3,
                   conversation_id = coalesce($2, conversation_id),
                   check_due_at = now() + make_interval(secs => $4)
               WHERE id = $1 AND status = 'pending'""",
            job.outbox_id,
            conversation_id,
            note,
            self.config.reconcile_after,
        )

    async def _retry_later(self, job: PayoutJob, error: str) -> None:
        if job.attempts >= self.config.max_attempts:
            # Some attempt may have reached M-Pesa: never refund blindly. Reconciliation keeps asking.
            log.error("payout %s: giving up after %d attempts: %s", job.transaction_id, job.attempts, error)
            await self.pool.execute(
                """UPDATE payout_outbox SET status = 'dead', last_error = $2, check_due_at = now()
                   WHERE id = $1 AND status = 'pending'""",
                job.outbox_id,
                error[:1000],
            )
            return
        delay = backoff(job.attempts, self.config.backoff_base, self.config.backoff_cap)
        log.warning("payout %s: transient error, retry in %.1fs: %s", job.transaction_id, delay, error)
        await self.pool.execute(
            """UPDATE payout_outbox SET last_error = $2, next_attempt_at = now() + make_interval(secs => $3)
               WHERE id = $1 AND status = 'pending'""",
            job.outbox_id,
            error[:1000],
            delay,
        )

    async def _rejected(self, job: PayoutJob, error: str) -> None:
        if job.attempts > 1:
            # An earlier attempt ended in a transient error and may have been accepted: a refund now could
            # pay the money twice. A human (and the status query) decides.
            log.error("payout %s: rejected after an uncertain attempt, parked: %s", job.transaction_id, error)
            await self.pool.execute(
                """UPDATE payout_outbox SET status = 'dead', last_error = $2, check_due_at = now()
                   WHERE id = $1 AND status = 'pending'""",
                job.outbox_id,
                error[:1000],
            )
            return
        log.warning("payout %s: rejected by Daraja, refunding: %s", job.transaction_id, error)
        outcome = await self.ledger.settle(job.transaction_id, success=False, error=error[:500])
        await self.pool.execute(
            "UPDATE payout_outbox SET last_error = $2 WHERE id = $1", job.outbox_id, error
        )
        log.info("payout %s: %s", job.transaction_id, outcome)

    async def _bank_credit(self, job: PayoutJob) -> None:
        result = await self.bank.credit(job.transaction_id, job.amount, job.bank_code, job.account)
        outcome = await self.ledger.settle(
            job.transaction_id,
            success=result.success,
            receipt=result.reference,
            error=result.error,
        )
        log.info("bank credit %s: %s", job.transaction_id, outcome)

    # --- reconciliation --------------------------------------------------------------------------------

    async def reconcile_due(self) -> int:
        """Ask M-Pesa about payouts that have been out too long without a verdict."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """WITH due AS (
                       SELECT o.id FROM payout_outbox o
                       JOIN transactions t ON t.id = o.transaction_id
                       WHERE o.kind = 'mpesa_payout' AND o.status IN ('sent', 'dead')
                         AND t.status = 'processing'
                         AND coalesce(o.check_due_at, coalesce(o.sent_at, o.created_at)
                                      + make_interval(secs => $1)) <= now()
                       ORDER BY o.id
                       LIMIT $2
                       FOR UPDATE OF o SKIP LOCKED
                   )
                   UPDATE payout_outbox o
                   SET check_due_at = now() + make_interval(secs => $1), status_checks = o.status_checks + 1
                   FROM due WHERE o.id = due.id
                   RETURNING o.transaction_id""",
                self.config.reconcile_after,
                self.config.batch,
            )
        for row in rows:
            await self.query_status(row["transaction_id"])
        return len(rows)

    async def query_status(self, transaction_id: uuid.UUID) -> None:
        try:
            answer = await self.client.transaction_status(
                originator_conversation_id=str(transaction_id),
                result_url=self.config.urls.status_result,
                timeout_url=self.config.urls.status_timeout,
            )
        except (DarajaTransientError, DarajaRejected) as exc:
            log.warning("status query for %s failed (will ask again): %s", transaction_id, exc)
            return
        await self.pool.execute(
            """INSERT INTO mpesa_status_queries (transaction_id, conversation_id, originator_conversation_id)
               VALUES ($1, $2, $3)""",
            transaction_id,
            answer.ConversationID or None,
            answer.OriginatorConversationID or None,
        )
        log.info("status query sent for payout %s", transaction_id)
