"""Top-ups: an STK push to the user's phone, recorded in `mpesa_transactions`, credited once by its callback.

The row is written before the push (status pending, no checkout id yet, a unique AccountReference) and named
after Daraja answers, so a callback that overtakes the answer is kept and applied as soon as the checkout id
is known. Auto top-ups are rows `ledger_confirm` inserted (kind `auto_topup`, no checkout id); this module
sends their push. A top-up whose callback never comes is settled by an STK query; one whose push's answer was
lost (no checkout id to query) stays pending and is found by Pull Transactions on its AccountReference
(`ledger.c2b.DepositReconciler`). Another push's callback for the same top-up credits nothing by its word: an
STK query of that push decides, and a top-up is credited at most once (sql/0008).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from ledger.c2b import new_topup_reference
from ledger.daraja.client import (
    STK_STILL_PROCESSING,
    DarajaAuthError,
    DarajaClient,
    DarajaError,
    DarajaRejected,
    DarajaTransientError,
)
from ledger.daraja.models import is_verdict
from ledger.faults import fault_point
from ledger.limits import MAX_TRANSACTION_KES, kes
from ledger.models import LedgerError
from ledger.mpesa_callbacks import CallbackProcessor
from ledger.payouts import backoff
from ledger.phones import normalize_ke_phone
from ledger.service import Ledger

log = logging.getLogger(__name__)

MAX_TOPUP = MAX_TRANSACTION_KES  # ledger.limits: one transaction at most
# STK query answers that mean "the customer has not finished yet".
STK_PENDING_CODES = frozenset({"4999", STK_STILL_PROCESSING})
# How long a push whose answer was lost is looked for (Pull Transactions sees 48 hours back).
LOST_PUSH_GIVE_UP_HOURS = 48


class TopupError(Exception):
    """The top-up could not be started; `code` is stable, `status` the fitting HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class TopupStarted:
    topup_id: uuid.UUID
    checkout_request_id: str
    merchant_request_id: str
    amount: Decimal
    phone: str
    customer_message: str


class TopupService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        client: DarajaClient,
        callback_url: str,
        *,
        ledger: Ledger | None = None,
        reconcile_after: float = 60.0,
        lease_seconds: float = 60.0,
        max_attempts: int = 5,
        lost_answer_grace: float = 180.0,
        rate_limit: int = 5,
        rate_window: float = 600.0,
    ) -> None:
        self.pool = pool
        self.client = client
        self.callback_url = callback_url
        self.ledger = ledger or Ledger(pool)
        self.callbacks = CallbackProcessor(pool, self.ledger)
        self.reconcile_after = reconcile_after
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        # After a push that may have reached the phone (answer lost), wait this long before another one:
        # the first prompt's callback (which names its top-up) comes first, so the customer is not
        # prompted twice for one top-up.
        self.lost_answer_grace = lost_answer_grace
        # Per user: at most `rate_limit` top-up requests in `rate_window` seconds (each one prompts a phone).
        self.rate_limit = rate_limit
        self.rate_window = rate_window

    def _callback_for(self, topup_id: uuid.UUID) -> str:
        """Each push's CallBackURL names its top-up, so its callback is bound to it even when the push's
        answer (with the CheckoutRequestID) never reached us."""
        return f"{self.callback_url.rstrip('/')}/{topup_id}"

    async def start(self, user_id: uuid.UUID, amount: Decimal) -> TopupStarted:
        """`POST /v1/topups`: push an STK prompt to the user's M-Pesa number for `amount`."""
        if amount <= 0 or amount > MAX_TOPUP or amount != amount.to_integral_value():
            raise TopupError(
                "invalid_amount", f"a top-up is a whole number of shillings from 1 to {kes(MAX_TOPUP)}"
            )
        phone = await self.pool.fetchval(
            "SELECT coalesce(nullif(mpesa_number, ''), phone_number) FROM profiles WHERE id = $1", user_id
        )
        if phone is None:
            raise TopupError("user_not_found", "no such user", 404)
        try:
            number = normalize_ke_phone(phone)
        except LedgerError as exc:
            raise TopupError(
                "invalid_phone", "the account's M-Pesa number is not a Kenyan mobile number"
            ) from exc
        # Counted and recorded under the profile's row lock (the ledger's lock order), so requests racing
        # each other cannot all pass the count.
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM profiles WHERE id = $1 FOR UPDATE", user_id)
            recent = await conn.fetchval(
                """SELECT count(*) FROM mpesa_transactions WHERE user_id = $1 AND kind = 'topup'
                     AND created_at > now() - make_interval(secs => $2)""",
                user_id,
                self.rate_window,
            )
            if recent >= self.rate_limit:
                raise TopupError(
                    "rate_limited",
                    f"at most {self.rate_limit} top-ups in {int(self.rate_window)} seconds; try again later",
                    429,
                )
            topup_id: uuid.UUID = await conn.fetchval(
                """INSERT INTO mpesa_transactions (user_id, amount, phone_number, kind, status)
                   VALUES ($1, $2, $3, 'topup', 'pending') RETURNING id""",
                user_id,
                amount,
                number,
            )
        reference = await self._reference(topup_id)
        fault_point("topup_before_push")
        try:
            answer = await self.client.stk_push(
                amount=amount,
                phone=phone,
                callback_url=self._callback_for(topup_id),
                account_reference=reference,
                description="Wallet top-up",
            )
        except DarajaError as exc:
            if _maybe_sent(exc):
                # The answer was lost: the prompt may be on the phone. Kept pending: its callback names this
                # top-up, and Pull Transactions finds its payment by the reference if no callback comes.
                await self._push_unknown(topup_id, str(exc))
            else:
                await self._fail_unsent(topup_id, str(exc))
            raise TopupError(
                "mpesa_unavailable",
                "M-Pesa did not confirm the request; if a prompt reaches your phone and you pay, your wallet "
                "is credited",
                502,
            ) from exc
        fault_point("topup_after_push")
        await self._attach(topup_id, answer.CheckoutRequestID, answer.MerchantRequestID)
        return TopupStarted(
            topup_id=topup_id,
            checkout_request_id=answer.CheckoutRequestID,
            merchant_request_id=answer.MerchantRequestID,
            amount=amount,
            phone=phone,
            customer_message=answer.CustomerMessage,
        )

    async def _attach(self, topup_id: uuid.UUID, checkout: str, merchant: str) -> None:
        await self.pool.execute(
            """UPDATE mpesa_transactions
               SET checkout_request_id = $2, merchant_request_id = $3,
                   query_due_at = now() + make_interval(secs => $4)
               WHERE id = $1 AND checkout_request_id IS NULL""",
            topup_id,
            checkout,
            merchant,
            self.reconcile_after,
        )
        await self.callbacks.apply_for_checkout(checkout)

    async def _reference(self, topup_id: uuid.UUID) -> str:
        """The top-up's unique STK AccountReference (kept, so every push of it carries the same)."""
        reference: str = await self.pool.fetchval(
            """UPDATE mpesa_transactions SET account_reference = coalesce(account_reference, $2)
               WHERE id = $1 RETURNING account_reference""",
            topup_id,
            new_topup_reference(topup_id),
        )
        return reference

    async def _push_unknown(self, topup_id: uuid.UUID, error: str) -> None:
        await self.pool.execute(
            """UPDATE mpesa_transactions
               SET push_unknown_since = coalesce(push_unknown_since, now()), stk_last_error = $2
               WHERE id = $1 AND status = 'pending' AND checkout_request_id IS NULL""",
            topup_id,
            f"STK push answer lost: {error}"[:500],
        )

    async def _fail_unsent(self, topup_id: uuid.UUID, error: str) -> None:
        await self.pool.execute(
            """UPDATE mpesa_transactions SET status = 'failed', error_message = $2, stk_last_error = $2,
                      completed_at = now()
               WHERE id = $1 AND status = 'pending' AND checkout_request_id IS NULL""",
            topup_id,
            f"STK push not sent: {error}"[:500],
        )

    # --- auto top-ups ------------------------------------------------------------------------------------

    async def push_auto_topups(self, limit: int = 8) -> int:
        """Send the STK push of auto top-ups that `ledger_confirm` queued."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """WITH due AS (
                       SELECT id FROM mpesa_transactions
                       WHERE kind = 'auto_topup' AND status = 'pending' AND checkout_request_id IS NULL
                         AND stk_next_attempt_at <= now()
                       ORDER BY stk_next_attempt_at LIMIT $1
                       FOR UPDATE SKIP LOCKED
                   )
                   UPDATE mpesa_transactions m
                   SET stk_attempts = m.stk_attempts + 1,
                       stk_next_attempt_at = now() + make_interval(secs => $2)
                   FROM due WHERE m.id = due.id
                   RETURNING m.id, m.amount, m.phone_number, m.stk_attempts""",
                limit,
                max(self.lease_seconds, self.lost_answer_grace),  # a crash after the push: see __init__
            )
        for row in rows:
            try:
                answer = await self.client.stk_push(
                    amount=row["amount"],
                    phone=row["phone_number"],
                    callback_url=self._callback_for(row["id"]),
                    account_reference=await self._reference(row["id"]),
                    description="Auto top-up",
                )
            except DarajaTransientError as exc:
                if _maybe_sent(exc):
                    await self._push_unknown(row["id"], str(exc))
                if row["stk_attempts"] >= self.max_attempts:
                    if not _maybe_sent(exc):
                        await self._fail_unsent(row["id"], str(exc))
                    else:  # no more prompts; Pull Transactions looks for the ones that may have gone
                        await self.pool.execute(
                            "UPDATE mpesa_transactions SET stk_next_attempt_at = 'infinity' WHERE id = $1",
                            row["id"],
                        )
                else:
                    delay = backoff(row["stk_attempts"], 2.0, 300.0)
                    if not isinstance(exc, DarajaAuthError):
                        delay = max(delay, self.lost_answer_grace)  # the push may be on the phone
                    await self.pool.execute(
                        """UPDATE mpesa_transactions SET stk_last_error = $2,
                                  stk_next_attempt_at = now() + make_interval(secs => $3)
                           WHERE id = $1""",
                        row["id"],
                        str(exc)[:500],
                        delay,
                    )
                continue
            except DarajaRejected as exc:
                await self._fail_unsent(row["id"], str(exc))
                continue
            fault_point("topup_after_push")
            await self._attach(row["id"], answer.CheckoutRequestID, answer.MerchantRequestID)
            log.info("auto top-up %s: STK push sent (%s)", row["id"], answer.CheckoutRequestID)
        return len(rows)

    # --- reconciliation ----------------------------------------------------------------------------------

    async def reconcile_due(self, limit: int = 8) -> int:
        """STK-query pending top-ups whose callback is overdue, and settle them by the answer."""
        rows = await self.pool.fetch(
            """UPDATE mpesa_transactions m
               SET query_due_at = now() + make_interval(secs => $1)
               WHERE id IN (SELECT id FROM mpesa_transactions
                            WHERE status = 'pending' AND checkout_request_id IS NOT NULL
                              AND coalesce(query_due_at, created_at) <= now()
                            ORDER BY query_due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING m.id, m.checkout_request_id, m.amount""",
            self.reconcile_after,
            limit,
        )
        for row in rows:
            await self._query(row["checkout_request_id"], None)
        alternates = await self.pool.fetch(
            """UPDATE mpesa_stk_alternates a
               SET query_due_at = now() + make_interval(secs => $1), queries = a.queries + 1
               WHERE checkout_request_id IN (SELECT checkout_request_id FROM mpesa_stk_alternates
                                             WHERE status = 'to_query' AND query_due_at <= now()
                                             ORDER BY query_due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING a.checkout_request_id, a.topup_id, a.queries""",
            self.reconcile_after,
            limit,
        )
        for alt in alternates:
            await self._query(alt["checkout_request_id"], alt["topup_id"])
        # A top-up whose process died around its push (no answer recorded, no error noted): its push may
        # be on the phone, so it is looked for like a lost answer (its callback, Pull Transactions).
        await self.pool.execute(
            """UPDATE mpesa_transactions SET push_unknown_since = created_at,
                      stk_last_error = 'the server stopped while sending the STK push'
               WHERE status = 'pending' AND checkout_request_id IS NULL AND push_unknown_since IS NULL
                 AND kind = 'topup' AND created_at < now() - make_interval(secs => $1)""",
            self.lease_seconds,
        )
        # A lost push that Pull Transactions never found in 48 hours was not paid.
        await self.pool.execute(
            """UPDATE mpesa_transactions
               SET status = 'failed', completed_at = now(),
                   error_message = 'the STK push was lost and no payment for it was found in 48 hours'
               WHERE status = 'pending' AND checkout_request_id IS NULL
                 AND push_unknown_since < now() - make_interval(hours => $1)""",
            LOST_PUSH_GIVE_UP_HOURS,
        )
        return len(rows) + len(alternates)

    async def _query(self, checkout: str, alternate_of: uuid.UUID | None) -> None:
        """Settle one push by an STK query (our own question to M-Pesa: a verified verdict)."""
        try:
            answer = await self.client.stk_query(checkout)
        except DarajaError as exc:
            if alternate_of is not None and _unknown_checkout(exc):
                # M-Pesa knows no such push: a forged or mistyped callback. Nothing to credit.
                await self.pool.execute(
                    "UPDATE mpesa_stk_alternates SET status = 'unknown_checkout' "
                    "WHERE checkout_request_id = $1",
                    checkout,
                )
                log.warning("STK callback named push %s, which M-Pesa does not know: ignored", checkout)
            elif exc.error_code != STK_STILL_PROCESSING:
                log.warning("STK query for %s failed (will ask again): %s", checkout, exc)
            return
        if answer.ResultCode in STK_PENDING_CODES or not is_verdict(answer.ResultCode):
            return
        success = answer.ResultCode == "0"
        # Recorded before the credit: the M-Pesa fact a credit without a receipt rests on (invariant 6).
        await self.pool.execute(
            "INSERT INTO mpesa_stk_queries (checkout_request_id, result_code, body) VALUES ($1, $2, $3)",
            checkout,
            str(answer.ResultCode),
            answer.model_dump(mode="json"),
        )
        outcome = await self.ledger.credit_topup(
            checkout,
            success=success,
            amount=None,
            receipt=None,
            error=None if success else f"M-Pesa {answer.ResultCode}: {answer.ResultDesc}"[:500],
            topup_id=alternate_of,
            verified=True,
        )
        if outcome == "paid_twice":
            log.error("TOP-UP PAID TWICE: top-up %s was credited and push %s was paid too; needs a person",
                      alternate_of, checkout)  # fmt: skip
        log.info("top-up push %s reconciled by STK query: %s", checkout, outcome)


def _unknown_checkout(exc: DarajaError) -> bool:
    """Whether an STK query's refusal says M-Pesa does not know the push. Daraja answers `400.002.02` for an
    unknown CheckoutRequestID and with the same code for a password or timestamp it refuses (a passkey being
    rotated, a drifting clock): only the message tells them apart, and any other refusal is asked again."""
    return isinstance(exc, DarajaRejected) and "checkoutrequestid" in str(exc).lower().replace(" ", "")


def _maybe_sent(exc: DarajaError) -> bool:
    """Whether a failed push may still have reached the phone (an unknown outcome, not a refusal)."""
    if isinstance(exc, DarajaAuthError) or not isinstance(exc, DarajaTransientError):
        return False
    return bool(getattr(exc, "maybe_sent", True))
