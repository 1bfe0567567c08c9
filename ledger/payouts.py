"""The payout outbox worker: sends confirmed transactions to M-Pesa, exactly once, and reconciles them.

`ledger_confirm` writes a `payout_outbox` row in the same database transaction as the debit; this worker
sends it afterwards, never inside that transaction. Claiming takes a short lease (`FOR UPDATE SKIP LOCKED`,
then `next_attempt_at` pushed past the lease) and commits before the gateway is called, so no lock is held
across the network and a crashed worker's row becomes due again when the lease runs out.

Exactly once rests on the transaction id being the `OriginatorConversationID`: a resend after a crash or a
lost answer is refused by Daraja as a duplicate (`500.002.1001`), which we read as "already sent". B2B has
no such id (Daraja assigns it), so a B2B payout is never resent once a request may have reached M-Pesa:
`b2b_sent_at` is committed before it goes out, its ResultURL ends in the transaction id, and the answer's
`ConversationID` is recorded before anything else; results, status queries and a result that overtook the
answer are matched by it. A missing callback is unknown, not failed: once a payout has been out for
`reconcile_after` seconds, a Transaction Status query asks M-Pesa, and its result callback settles the payout
like a result callback would.

Pace: `send_due` drains the backlog in one round (a full claim is followed at once by another) up to
`max_per_round` rows, so a burst of confirmations is paid out at Daraja's pace, not `batch` a round. Each
request waits for its slot of the process's `Pace` (`rate_per_second`, evenly spaced) with no connection in
hand, and the next claim waits until the slots already taken have started, so a claimed row waits at most
one claim's worth of slots, well inside its lease.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import asyncpg

from intents.banks import bank_paybill
from ledger.daraja.client import (
    DarajaClient,
    DarajaDuplicate,
    DarajaRejected,
    DarajaTransientError,
)
from ledger.daraja.models import AcceptedResponse
from ledger.faults import fault_point
from ledger.mpesa_callbacks import B2B_TYPES, CallbackProcessor
from ledger.pace import Pace
from ledger.service import Ledger

log = logging.getLogger(__name__)


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

    def payout_result_for(self, transaction_id: uuid.UUID) -> str:
        """A B2B ResultURL names its transaction: B2B carries no id of ours (see the module docstring)."""
        return f"{self.payout_result}/{transaction_id}"

    def payout_timeout_for(self, transaction_id: uuid.UUID) -> str:
        return f"{self.payout_timeout}/{transaction_id}"

    @property
    def status_result(self) -> str:
        return f"{self.base}/status/result"

    @property
    def status_timeout(self) -> str:
        return f"{self.base}/status/timeout"

    @property
    def stk(self) -> str:
        return f"{self.base}/stk"

    @property
    def balance_result(self) -> str:
        return f"{self.base}/balance/result"

    @property
    def reversal_result(self) -> str:
        return f"{self.base}/reversal/result"


@dataclass(frozen=True)
class PayoutConfig:
    urls: CallbackUrls
    reconcile_after: float = 60.0
    lease_seconds: float = 60.0
    max_attempts: int = 10
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    batch: int = 8
    rate_per_second: float = 50.0  # Daraja's throttling limit for this process (see ledger.pace)
    max_per_round: int = 100  # a round then ends, so the other background duties get their turn

    @property
    def claim_size(self) -> int:
        """Rows per claim: `batch`, but never more than half a lease's worth of slots, so no claimed row can
        wait for its slot until its lease runs out and another worker sends it too."""
        return max(1, min(self.batch, int(self.rate_per_second * self.lease_seconds / 2)))


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
    b2b_sent_at: object = None
    conversation_id: str | None = None


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
       t.status AS tx_status, o.b2b_sent_at, o.conversation_id
FROM payout_outbox o
JOIN transactions t ON t.id = o.transaction_id
JOIN profiles p ON p.id = t.user_id
WHERE o.id = ANY($1::bigint[])
ORDER BY o.id
"""

# Taken only by the attempt that finds the mark unset: two attempts at one B2B payout (a lease that ran out
# while the first waited for its slot) cannot both send it; B2B has no id of ours for M-Pesa to refuse twice.
_B2B_GOING_OUT = """UPDATE payout_outbox SET b2b_sent_at = now()
                    WHERE id = $1 AND b2b_sent_at IS NULL AND status = 'pending' RETURNING id"""


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
        pace: Pace | None = None,
    ) -> None:
        self.pool = pool
        self.client = client
        self.config = config
        self.ledger = ledger or Ledger(pool)
        self.callbacks = CallbackProcessor(pool, self.ledger)
        self.pace = pace or Pace(config.rate_per_second)

    # --- sending ---------------------------------------------------------------------------------------

    async def send_due(self) -> int:
        """Drain what is due: claim again at once while claims come back full, up to `max_per_round` rows
        (a backlog goes out at the pace, not `batch` a round); returns how many rows were claimed.

        Sends run while the next rows are claimed, so Daraja's latency does not slow the pace; the round
        ends when they all have, whatever happens to the claims."""
        claimed = 0
        sending: list[asyncio.Task[None]] = []
        try:
            while claimed < self.config.max_per_round:
                await self.pace.caught_up()
                size = min(self.config.claim_size, self.config.max_per_round - claimed)
                # The claim's last row starts within half its lease: claim_size bounds the slots a claim
                # takes, this the wait for the first of them (a slot further off than the lease would let
                # another worker claim the row and send it too).
                await self.pace.near(self.config.lease_seconds / 2 - (size - 1) / self.config.rate_per_second)
                rows = await self._claim(size)
                sending += [asyncio.create_task(self._handle(row)) for row in rows]
                claimed += len(rows)
                if len(rows) < size:
                    break
        finally:
            await asyncio.gather(*sending)
        return claimed

    async def _claim(self, size: int) -> list[asyncpg.Record]:
        """Lease up to `size` due rows and commit before any of them is sent (no lock across the network)."""
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [r["id"] for r in await conn.fetch(_CLAIM, size, self.config.lease_seconds)]
        if not ids:
            return []
        rows: list[asyncpg.Record] = await self.pool.fetch(_JOB, ids)
        return rows

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
            await self._send(job)
        except Exception:  # a bug must not stop the worker; the lease makes the row due again
            log.exception("payout %s: unexpected error", job.transaction_id)

    async def _send(self, job: PayoutJob) -> None:
        fault_point("after_commit_before_send")
        b2b = job.type in B2B_TYPES
        if b2b and await self._b2b_already_out(job):
            return
        await self.pace.wait()  # with no connection in hand; only a request about to go out takes a slot
        # Committed before the request goes out, after the wait: the last step before it.
        if b2b and await self.pool.fetchval(_B2B_GOING_OUT, job.outbox_id) is None:
            log.warning("payout %s: another attempt is sending this B2B payout; not sent", job.transaction_id)
            return
        try:
            accepted = await self._request(job)
        except DarajaDuplicate as exc:
            if b2b:  # B2B has no id of ours to be a duplicate of: whatever this is, do not send again
                await self._park(job, f"B2B answered as a duplicate (not resent): {exc}")
                return
            log.info("payout %s: Daraja says already sent (%s)", job.transaction_id, exc)
            await self._mark_sent(job, None, "duplicate OriginatorConversationID: already sent")
            return
        except DarajaTransientError as exc:
            if b2b and exc.maybe_sent:
                await self._park(job, f"B2B request may have reached M-Pesa (not resent): {exc}")
                return
            if b2b:
                await self.pool.execute(
                    "UPDATE payout_outbox SET b2b_sent_at = NULL WHERE id = $1", job.outbox_id
                )
            await self._retry_later(job, str(exc))
            return
        except DarajaRejected as exc:
            await self._rejected(job, str(exc))
            return
        fault_point("after_send_before_record")
        if b2b and not accepted.ConversationID:
            # Nothing to match its result or to query it by: park it, its URL-bound result will settle it.
            await self._park(job, "B2B accepted without a ConversationID (not resent)")
            return
        await self._mark_sent(
            job, accepted.ConversationID or None, None, accepted.OriginatorConversationID if b2b else None
        )

    async def _b2b_already_out(self, job: PayoutJob) -> bool:
        """An earlier attempt of this B2B payout was answered or may have gone: record that, send nothing."""
        if job.conversation_id is not None:
            await self._mark_sent(job, job.conversation_id, None)
            return True
        if job.b2b_sent_at is not None:
            await self._park(job, "B2B request may have reached M-Pesa before a crash (not resent)")
            return True
        return False

    async def _park(self, job: PayoutJob, error: str) -> None:
        """A payout that may have been paid and cannot be safely resent: never refunded blindly. Its result
        callback (bound by its ResultURL) or a status query settles it; otherwise a person does."""
        log.error("payout %s: parked: %s", job.transaction_id, error)
        await self.pool.execute(
            """UPDATE payout_outbox SET status = 'dead', last_error = $2, check_due_at = now()
               WHERE id = $1 AND status = 'pending'""",
            job.outbox_id,
            error[:1000],
        )
        await self.callbacks.apply_for_payout(job.transaction_id)

    async def _request(self, job: PayoutJob) -> AcceptedResponse:
        urls = self.config.urls
        common: dict[str, Any] = {
            "originator_conversation_id": str(job.transaction_id),
            "amount": job.amount,
            "result_url": urls.payout_result,
            "timeout_url": urls.payout_timeout,
        }
        b2b: dict[str, Any] = {
            "amount": job.amount,
            "result_url": urls.payout_result_for(job.transaction_id),
            "timeout_url": urls.payout_timeout_for(job.transaction_id),
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
                **b2b,
            )
        if job.type == "paybill":
            return await self.client.b2b(
                command="BusinessPayBill",
                party_b=job.paybill,
                account_reference=job.account,
                requester=job.user_phone,
                remarks=remarks,
                **b2b,
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
                **b2b,
            )
        raise DarajaRejected(f"no Daraja request for transaction type {job.type!r}")

    async def _mark_sent(
        self,
        job: PayoutJob,
        conversation_id: str | None,
        note: str | None,
        daraja_originator: str | None = None,
    ) -> None:
        """Record Daraja's ConversationID (and, for B2B, the OriginatorConversationID it assigned) first
        (whatever the row's status), then apply any result that overtook the answer and was kept for it."""
        await self.pool.execute(
            """UPDATE payout_outbox
               SET conversation_id = coalesce(conversation_id, $2),
                   daraja_originator_id = coalesce(daraja_originator_id, $5),
                   status = CASE WHEN status = 'pending' THEN 'sent' ELSE status END,
                   sent_at = CASE WHEN status = 'pending' THEN coalesce(sent_at, now()) ELSE sent_at END,
                   last_error = CASE WHEN status = 'pending' THEN $3 ELSE last_error END,
                   check_due_at = CASE WHEN status = 'pending' THEN now() + make_interval(secs => $4)
                                       ELSE check_due_at END
               WHERE id = $1""",
            job.outbox_id,
            conversation_id,
            note,
            self.config.reconcile_after,
            daraja_originator or None,
        )
        await self.callbacks.apply_for_payout(job.transaction_id, conversation_id)

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
        """Refunded only when this attempt is the payout's only one, as the database says under its locks:
        `job.attempts` is what it was at our claim, and another attempt may have been claimed since (a lease
        that ran out while ours waited for its slot or its answer) and reached M-Pesa. The refund commits with
        that check, so no attempt can be claimed in between (a claim skips the locked row, then finds it
        settled)."""
        async with self.pool.acquire() as conn, conn.transaction():
            # ledger_settle's lock order (the user's profile, then the payout): no deadlock with a callback.
            await conn.execute(
                """SELECT 1 FROM profiles p JOIN transactions t ON t.user_id = p.id
                   WHERE t.id = $1 FOR UPDATE OF p""",
                job.transaction_id,
            )
            row = await conn.fetchrow(
                "SELECT attempts, status FROM payout_outbox WHERE id = $1 FOR UPDATE", job.outbox_id
            )
            alone = row is not None and row["attempts"] <= 1 and row["status"] == "pending"
            if alone:
                log.warning("payout %s: rejected by Daraja, refunding: %s", job.transaction_id, error)
                ledger = Ledger(cast(asyncpg.Pool, conn))  # its calls run in this transaction
                outcome = await ledger.settle(job.transaction_id, success=False, error=error[:500])
                await conn.execute(
                    "UPDATE payout_outbox SET last_error = $2 WHERE id = $1", job.outbox_id, error
                )
                log.info("payout %s: %s", job.transaction_id, outcome)
                return
        # Another attempt was made (before ours, or since our claim) and may have been accepted: a refund
        # now could pay the money twice. A human (and the status query) decides.
        log.error("payout %s: rejected after an uncertain attempt, parked: %s", job.transaction_id, error)
        await self.pool.execute(
            """UPDATE payout_outbox SET status = 'dead', last_error = $2, check_due_at = now()
               WHERE id = $1 AND status = 'pending'""",
            job.outbox_id,
            error[:1000],
        )

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
                         -- a B2B payout is asked about by an id Daraja assigned: none, no question
                         AND (t.type <> ALL($3::text[]) OR o.conversation_id IS NOT NULL
                              OR o.daraja_originator_id IS NOT NULL)
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
                sorted(B2B_TYPES),
            )
        for row in rows:
            await self.query_status(row["transaction_id"])
        return len(rows)

    async def query_status(self, transaction_id: uuid.UUID) -> None:
        """B2C and B2Pochi are asked about by our id. B2B by an id Daraja assigned: the TransactionStatus page
        documents its OriginatorConversationID, other sources its ConversationID, so the questions take turns
        (a "not found" answer is no verdict: the next question asks by the other)."""
        row = await self.pool.fetchrow(
            """SELECT t.type, o.conversation_id, o.daraja_originator_id, o.status_checks FROM transactions t
               JOIN payout_outbox o ON o.transaction_id = t.id WHERE t.id = $1""",
            transaction_id,
        )
        b2b = row is not None and row["type"] in B2B_TYPES
        asked = str(transaction_id)
        if b2b and row is not None:
            ids = [str(i) for i in (row["daraja_originator_id"], row["conversation_id"]) if i]
            asked = ids[max(int(row["status_checks"] or 0) - 1, 0) % len(ids)] if ids else ""
        if not asked:
            log.warning("status query for B2B payout %s: no ConversationID to ask by", transaction_id)
            return
        try:
            answer = await self.client.transaction_status(
                originator_conversation_id=asked,
                result_url=self.config.urls.status_result,
                timeout_url=self.config.urls.status_timeout,
                b2b=b2b,
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
