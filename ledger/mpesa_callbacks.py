"""Daraja callbacks: recorded durably first, then applied to the ledger exactly once.

Callbacks are unsigned and arrive late, twice, out of order or not at all. So each one is stored raw in
`mpesa_callbacks` before it is acknowledged; applying it goes through the ledger's exactly-once functions
(`ledger_settle`, `ledger_credit_topup`), which turn repeats into `already_settled`. A callback for an id we
do not know changes nothing; one whose amount differs from the transaction is refused and logged; a queue
timeout or an inconclusive result is treated as unknown and answered by a status query, never as a failure.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import asyncpg
from pydantic import ValidationError

from ledger.c2b import apply_confirmation
from ledger.daraja.models import (
    CallbackMetadataBody,
    ResultBody,
    ResultEnvelope,
    StkCallbackEnvelope,
    account_balances,
    callback_amount,
    is_verdict,
)
from ledger.faults import fault_point
from ledger.models import LedgerError
from ledger.service import Ledger

log = logging.getLogger(__name__)

# Transaction types paid by B2B, whose results only Daraja's ConversationID names (ledger.payouts.B2B_TYPES).
B2B_TYPES = frozenset({"buy_goods_till", "paybill", "mpesa_to_bank"})

CallbackKind = Literal[
    "payout_result",
    "payout_timeout",
    "status_result",
    "status_timeout",
    "stk",
    "c2b_confirmation",
    "balance_result",
    "reversal_result",
]
KINDS: tuple[CallbackKind, ...] = (
    "payout_result",
    "payout_timeout",
    "status_result",
    "status_timeout",
    "stk",
    "c2b_confirmation",
    "balance_result",
    "reversal_result",
)

# Result codes on a result URL that do not say whether the money moved: ask again with a status query.
# 15 (duplicate detected) and 17 (internal failure) are no verdict either: refunding on them could refund a
# payout that was paid (ledger.md, "What Daraja really does").
INCONCLUSIVE_CODES = frozenset({"1037", "500.001.1001", "15", "17"})
PAYOUT_KINDS: tuple[CallbackKind, ...] = ("payout_result", "payout_timeout")
# What the Transaction Status result calls a payout that did or did not happen.
STATUS_COMPLETED = frozenset({"completed"})
STATUS_FAILED = frozenset({"failed", "declined", "cancelled", "expired"})


@dataclass(frozen=True)
class Applied:
    outcome: str
    transaction_id: uuid.UUID | None = None
    detail: str | None = None
    done: bool = True  # False: keep it for a later attempt (e.g. an STK callback before its push's answer)


def _ids(kind: CallbackKind, body: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """Best-effort (originator, conversation, checkout, result code) of a raw body, for indexing."""
    try:
        if kind == "c2b_confirmation":
            return None, _s(body.get("TransID")), None, None
        if kind == "stk":
            cb = body["Body"]["stkCallback"]
            return (
                None,
                _s(cb.get("MerchantRequestID")),
                _s(cb.get("CheckoutRequestID")),
                _s(cb.get("ResultCode")),
            )
        res = body["Result"]
        originator, conversation = _s(res.get("OriginatorConversationID")), _s(res.get("ConversationID"))
        return originator, conversation, None, _s(res.get("ResultCode"))
    except (KeyError, TypeError, AttributeError):
        return None, None, None, None


def _s(value: Any) -> str | None:
    """An id as text for the index columns (a forged body may carry numbers or objects: never a 500)."""
    return None if value is None else str(value)[:200]


async def record_callback(
    pool: asyncpg.Pool,
    kind: CallbackKind,
    body: Any,
    topup_id: uuid.UUID | None = None,
    payout_id: uuid.UUID | None = None,
) -> int:
    """Store the raw callback (committed before we acknowledge it); returns its id. `topup_id`: the top-up
    named by an STK callback's URL (each push's CallBackURL ends in its top-up's id); `payout_id`: the
    payout named by a B2B result's URL (B2B carries no id of ours)."""
    originator, conversation, checkout, code = _ids(kind, body)
    callback_id: int = await pool.fetchval(
        """INSERT INTO mpesa_callbacks
               (kind, body, originator_conversation_id, conversation_id, checkout_request_id, result_code,
                topup_id, payout_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
        kind,
        body,
        originator,
        conversation,
        checkout,
        code,
        topup_id,
        payout_id,
    )
    return callback_id


class CallbackProcessor:
    """Applies recorded callbacks to the ledger."""

    def __init__(self, pool: asyncpg.Pool, ledger: Ledger | None = None) -> None:
        self.pool = pool
        self.ledger = ledger or Ledger(pool)

    async def receive(
        self,
        kind: CallbackKind,
        body: Any,
        *,
        topup_id: uuid.UUID | None = None,
        payout_id: uuid.UUID | None = None,
    ) -> tuple[int, Applied]:
        """Record, then apply. An error while applying leaves it recorded for `apply_pending`."""
        callback_id = await record_callback(self.pool, kind, body, topup_id, payout_id)
        fault_point("callback_after_record")
        try:
            applied = await self.apply(callback_id)
        except (asyncpg.PostgresError, OSError, LedgerError) as exc:
            log.exception("callback %d recorded but not applied yet", callback_id)
            return callback_id, Applied("deferred", detail=str(exc), done=False)
        return callback_id, applied

    async def apply(self, callback_id: int) -> Applied:
        row = await self.pool.fetchrow(
            "SELECT kind, body, processed_at, outcome, topup_id, payout_id FROM mpesa_callbacks "
            "WHERE id = $1",
            callback_id,
        )
        if row is None:
            return Applied("missing")
        if row["processed_at"] is not None:
            return Applied(str(row["outcome"]))
        kind: CallbackKind = row["kind"]
        body = row["body"]
        if kind == "stk":
            applied = await self._stk(body, row["topup_id"])
        elif kind == "c2b_confirmation":
            outcome, trans_id = await apply_confirmation(self.ledger, body)
            applied = Applied(outcome, detail=trans_id)
        elif kind in ("payout_result", "status_result"):
            applied = await self._result(kind, body, row["payout_id"])
        elif kind == "balance_result":
            applied = await self._balance(body)
        elif kind == "reversal_result":
            applied = await self._reversal(body)
        else:
            applied = await self._timeout(kind, body, row["payout_id"])
        # Two appliers may race on one callback (its route, and the payout's answer landing): a processed row
        # is never taken back to unprocessed, and only a real outcome replaces the loser's 'already_settled'.
        await self.pool.execute(
            """UPDATE mpesa_callbacks
               SET outcome = $2, detail = $3, transaction_id = coalesce($4, transaction_id),
                   processed_at = CASE WHEN $5 THEN coalesce(processed_at, now()) END
               WHERE id = $1
                 AND (processed_at IS NULL
                      OR ($5 AND outcome = 'already_settled' AND $2 <> 'already_settled'))""",
            callback_id,
            applied.outcome,
            applied.detail,
            applied.transaction_id,
            applied.done,
        )
        return applied

    async def apply_pending(self, *, min_age: float = 2.0, max_age: float = 600.0, limit: int = 50) -> int:
        """Re-apply recorded callbacks still waiting (crash between record and apply, early STK callbacks).
        `max_age` bounds the callbacks kept waiting for something (an STK push's answer, a B2B answer), which
        queries settle anyway; a C2B confirmation never waits, and one with a reference we do not expect has
        no other way into the books: it is applied whatever its age (a crash, then a long outage)."""
        ids = await self.pool.fetch(
            """SELECT id FROM mpesa_callbacks
               WHERE processed_at IS NULL
                 AND received_at <= now() - make_interval(secs => $1)
                 AND (received_at >= now() - make_interval(secs => $2) OR kind = 'c2b_confirmation')
               ORDER BY id LIMIT $3""",
            min_age,
            max_age,
            limit,
        )
        done = 0
        for r in ids:
            try:
                applied = await self.apply(r["id"])
            except Exception:  # one bad row must not keep every later callback from being applied
                log.exception("recorded callback %d could not be applied", r["id"])
                continue
            if applied.done:
                done += 1
        return done

    async def apply_for_checkout(self, checkout_request_id: str) -> None:
        """An STK push's answer was just recorded: apply any callback that overtook it."""
        for r in await self.pool.fetch(
            """SELECT id FROM mpesa_callbacks
               WHERE checkout_request_id = $1 AND processed_at IS NULL ORDER BY id""",
            checkout_request_id,
        ):
            await self.apply(r["id"])

    async def apply_for_payout(self, transaction_id: uuid.UUID, conversation_id: str | None = None) -> None:
        """A payout's answer (its ConversationID) was just recorded, or it was parked: apply the results
        that overtook it and were kept for it (bound by URL, or naming that ConversationID)."""
        for r in await self.pool.fetch(
            """SELECT id FROM mpesa_callbacks
               WHERE kind = ANY($3::text[]) AND processed_at IS NULL
                 AND (payout_id = $1 OR ($2::text IS NOT NULL AND conversation_id = $2))
               ORDER BY id""",
            transaction_id,
            conversation_id,
            list(PAYOUT_KINDS),
        ):
            await self.apply(r["id"])

    # --- payouts -------------------------------------------------------------------------------------------

    async def _bound_payout(
        self, result: ResultBody, payout_id: uuid.UUID
    ) -> asyncpg.Record | Applied | None:
        """The payout a result's URL names, checked against Daraja's ConversationID: a result for another
        payout (a replayed ConversationID) is refused; one that overtook the answer is kept for it; one for a
        payout parked without an answer (lost, or a crash) brings its ConversationID with it."""
        row = await self.pool.fetchrow(
            """SELECT t.id, t.amount, t.status, t.type, o.conversation_id, o.status AS outbox_status
               FROM transactions t JOIN payout_outbox o ON o.transaction_id = t.id WHERE t.id = $1""",
            payout_id,
        )
        if row is None:
            return Applied("unknown_id", detail=f"no payout {payout_id}")
        if row["type"] not in B2B_TYPES:
            return None  # only B2B ResultURLs name their payout: others are matched by our id
        if not result.ConversationID:
            return Applied("conversation_mismatch", payout_id, "no ConversationID")
        known = row["conversation_id"]
        if known is None and row["outbox_status"] == "dead":
            known = await self.pool.fetchval(
                """UPDATE payout_outbox SET conversation_id = coalesce(conversation_id, $2)
                   WHERE transaction_id = $1 RETURNING conversation_id""",
                payout_id,
                result.ConversationID,
            )
            log.warning(
                "payout %s: ConversationID %s taken from its result", payout_id, result.ConversationID
            )
        if known is None:
            return Applied("awaiting_answer", payout_id, result.ConversationID, done=False)
        if known != result.ConversationID:
            log.error(
                "REFUSED result for payout %s: ConversationID %s is not its %s",
                payout_id,
                result.ConversationID,
                known,
            )
            return Applied("conversation_mismatch", payout_id, f"{result.ConversationID} is not {known}")
        return row

    async def _find_payout(self, result: ResultBody, kind: CallbackKind) -> asyncpg.Record | None:
        candidates: list[str] = []
        if kind == "status_result":
            named = result.parameter("OriginatorConversationID")
            if named:
                candidates.append(str(named))
        else:
            candidates.append(result.OriginatorConversationID)
        for candidate in candidates:
            try:
                tx_id = uuid.UUID(candidate)
            except (ValueError, TypeError):
                continue
            row = await self.pool.fetchrow(
                "SELECT id, amount, status, type FROM transactions WHERE id = $1 "
                "AND EXISTS (SELECT 1 FROM payout_outbox WHERE transaction_id = $1)",
                tx_id,
            )
            if row is not None:
                return row
        if kind == "status_result":
            tx_id_found = await self.pool.fetchval(
                """SELECT transaction_id FROM mpesa_status_queries
                   WHERE conversation_id = $1 OR originator_conversation_id = $2 LIMIT 1""",
                result.ConversationID,
                result.OriginatorConversationID,
            )
        else:
            if not result.ConversationID:
                return None
            tx_id_found = await self.pool.fetchval(
                "SELECT transaction_id FROM payout_outbox WHERE conversation_id = $1", result.ConversationID
            )
        if tx_id_found is None:
            return None
        return await self.pool.fetchrow(
            "SELECT id, amount, status, type FROM transactions WHERE id = $1", tx_id_found
        )

    async def _payout_of(
        self, result: ResultBody, kind: CallbackKind, payout_id: uuid.UUID | None
    ) -> asyncpg.Record | Applied:
        """The payout a result or timeout is about, or why it is not applied (now)."""
        if payout_id is not None and kind in PAYOUT_KINDS:
            bound = await self._bound_payout(result, payout_id)
            if bound is not None:
                return bound
        tx = await self._find_payout(result, kind)
        if tx is None:
            log.warning(
                "%s callback for unknown id %s / %s: acknowledged, nothing changed",
                kind,
                result.OriginatorConversationID,
                result.ConversationID,
            )
            # A result may overtake the answer that names its ConversationID: kept (apply_pending and
            # apply_for_payout try again) rather than dropped.
            return Applied("unknown_id", done=kind not in PAYOUT_KINDS or not result.ConversationID)
        if kind in PAYOUT_KINDS and tx["type"] in B2B_TYPES:
            # Daraja assigns B2B ids: only its ConversationID, recorded from the answer, names the payout.
            known = await self.pool.fetchval(
                "SELECT conversation_id FROM payout_outbox WHERE transaction_id = $1", tx["id"]
            )
            if known is None:
                return Applied("awaiting_answer", tx["id"], result.ConversationID, done=False)
            if known != result.ConversationID:
                return Applied("conversation_mismatch", tx["id"], f"{result.ConversationID} is not {known}")
        elif kind in PAYOUT_KINDS and result.ConversationID:
            known = await self.pool.fetchval(
                "SELECT conversation_id FROM payout_outbox WHERE transaction_id = $1", tx["id"]
            )
            if known is not None and known != result.ConversationID:
                log.error("REFUSED result for payout %s: ConversationID is not its %s", tx["id"], known)
                return Applied("conversation_mismatch", tx["id"], f"{result.ConversationID} is not {known}")
        return tx

    async def _result(self, kind: CallbackKind, body: Any, payout_id: uuid.UUID | None = None) -> Applied:
        try:
            result = ResultEnvelope.model_validate(body).Result
        except ValidationError as exc:
            log.warning("malformed %s callback: %s", kind, exc.errors()[:1])
            return Applied("malformed", detail=str(exc)[:500])
        tx = await self._payout_of(result, kind, payout_id)
        if isinstance(tx, Applied):
            return tx
        tx_id: uuid.UUID = tx["id"]
        if kind == "status_result":
            return await self._status_result(tx, result)
        if result.ResultCode in INCONCLUSIVE_CODES or not is_verdict(result.ResultCode):
            await self._check_soon(tx_id)
            return Applied("inconclusive", tx_id, f"{result.ResultCode} {result.ResultDesc}")
        if result.succeeded:
            mismatch = self._mismatch(tx, _reported(result, "TransactionAmount", "Amount"))
            if mismatch is not None:
                return mismatch
            receipt = result.TransactionID or str(result.parameter("TransactionReceipt") or "")
            outcome = await self.ledger.settle(tx_id, success=True, receipt=receipt or None)
        else:
            outcome = await self.ledger.settle(
                tx_id, success=False, error=f"M-Pesa {result.ResultCode}: {result.ResultDesc}"[:500]
            )
        log.info("payout %s: result %s -> %s", tx_id, result.ResultCode, outcome)
        return await self._settled(tx_id, outcome, succeeded=result.succeeded)

    async def _status_result(self, tx: asyncpg.Record, result: ResultBody) -> Applied:
        tx_id: uuid.UUID = tx["id"]
        if not result.succeeded:
            # The query itself failed or found nothing: still unknown. Reconciliation asks again later.
            log.warning(
                "status query for %s inconclusive: %s %s", tx_id, result.ResultCode, result.ResultDesc
            )
            return Applied("status_unknown", tx_id, f"{result.ResultCode} {result.ResultDesc}")
        status = str(result.parameter("TransactionStatus") or "").strip().lower()
        if status in STATUS_COMPLETED:
            mismatch = self._mismatch(tx, _reported(result, "Amount"))
            if mismatch is not None:
                return mismatch
            receipt = str(result.parameter("ReceiptNo") or "") or None
            outcome = await self.ledger.settle(tx_id, success=True, receipt=receipt)
        elif status in STATUS_FAILED:
            reason = result.parameter("ResultDesc") or result.parameter("ReasonType") or status
            outcome = await self.ledger.settle(tx_id, success=False, error=f"M-Pesa: {reason}"[:500])
        else:
            log.warning("status query for %s: status %r not conclusive", tx_id, status)
            return Applied("status_unknown", tx_id, status)
        log.info("payout %s: status %s -> %s", tx_id, status, outcome)
        return await self._settled(tx_id, outcome, succeeded=status not in STATUS_FAILED)

    async def _settled(self, tx_id: uuid.UUID, outcome: str, *, succeeded: bool) -> Applied:
        """An `already_settled` verdict that contradicts the settlement (paid after we refunded, or failed
        after we completed) cannot be undone by software: it is recorded as `settlement_conflict` on the
        callback row and logged as an error, for a person to reconcile with Safaricom."""
        if outcome != "already_settled":
            return Applied(outcome, tx_id)
        status = await self.pool.fetchval("SELECT status FROM transactions WHERE id = $1", tx_id)
        if (status == "failed") == succeeded:
            log.error(
                "SETTLEMENT CONFLICT: payout %s is %s but M-Pesa now reports it %s; needs a person",
                tx_id,
                status,
                "paid" if succeeded else "failed",
            )
            return Applied("settlement_conflict", tx_id, f"transaction {status}, M-Pesa says the opposite")
        return Applied(outcome, tx_id)

    def _mismatch(self, tx: asyncpg.Record, reported: Decimal | str | None) -> Applied | None:
        """None when the callback names no amount or the transaction's; a refusal otherwise (an amount it
        names but we cannot read as money is refused too: never settle on it)."""
        if reported is None or (isinstance(reported, Decimal) and reported == tx["amount"]):
            return None
        log.error(
            "REFUSED callback for payout %s: amount %s differs from the transaction's %s",
            tx["id"],
            reported,
            tx["amount"],
        )
        return Applied("amount_mismatch", tx["id"], f"reported {reported}, expected {tx['amount']}")

    async def _timeout(self, kind: CallbackKind, body: Any, payout_id: uuid.UUID | None = None) -> Applied:
        if isinstance(body, dict) and "Result" not in body:
            return await self._flat_timeout(kind, body, payout_id)
        try:
            result = ResultEnvelope.model_validate(body).Result
        except ValidationError as exc:
            return Applied("malformed", detail=str(exc)[:500])
        if kind == "status_timeout":
            found = await self._find_payout(result, "status_result")
            tx: asyncpg.Record | Applied = Applied("unknown_id") if found is None else found
        else:
            tx = await self._payout_of(result, "payout_timeout", payout_id)
        if isinstance(tx, Applied):
            return tx
        await self._check_soon(tx["id"])
        return Applied("status_check_scheduled", tx["id"], f"{result.ResultCode} {result.ResultDesc}")

    async def _flat_timeout(
        self, kind: CallbackKind, body: dict[str, Any], payout_id: uuid.UUID | None
    ) -> Applied:
        """Daraja posts to the QueueTimeOutURL the original request, flat (no `Result`): the payout it is
        about is the one its URL is bound to, or named by the request's own id (our OriginatorConversationID
        of a payout; the OriginalConversationID a status query asked by). It is asked about again soon: a
        timeout is never a verdict (a forged one can only bring a status query forward)."""
        asked = [str(body.get(key) or "") for key in ("OriginatorConversationID", "OriginalConversationID")]
        tx_id = payout_id
        for candidate in (a for a in asked if a and tx_id is None):
            tx_id = await self.pool.fetchval(
                """SELECT transaction_id FROM payout_outbox
                   WHERE transaction_id::text = $1 OR conversation_id = $1 OR daraja_originator_id = $1
                   LIMIT 1""",
                candidate,
            )
        if tx_id is None:
            return Applied("unknown_id", detail=f"queue timeout for {asked}"[:500])
        await self._check_soon(tx_id)
        return Applied("status_check_scheduled", tx_id, f"queue timeout of {kind}")

    async def _balance(self, body: Any) -> Applied:
        """An Account Balance answer: kept with its question for `ongea-pesa mpesa-float` (no money)."""
        try:
            result = ResultEnvelope.model_validate(body).Result
        except ValidationError as exc:
            return Applied("malformed", detail=str(exc)[:500])
        accounts = {k: str(v) for k, v in account_balances(result.parameter("AccountBalance")).items()}
        updated = await self.pool.fetchval(
            """UPDATE mpesa_balance_queries
               SET answered_at = now(), result_code = $3, result_desc = $4, accounts = $5
               WHERE answered_at IS NULL AND (conversation_id = $1 OR originator_conversation_id = $2)
               RETURNING id""",
            result.ConversationID,
            result.OriginatorConversationID,
            result.ResultCode,
            result.ResultDesc[:500],
            accounts,
        )
        return Applied("recorded" if updated is not None else "unknown_id")

    async def _reversal(self, body: Any) -> Applied:
        """A Reversal result: the ledger credits the sender once when M-Pesa says the money is back."""
        try:
            result = ResultEnvelope.model_validate(body).Result
        except ValidationError as exc:
            return Applied("malformed", detail=str(exc)[:500])
        reversal = await self.pool.fetchrow(
            """SELECT id, transaction_id FROM mpesa_reversals
               WHERE conversation_id = $1 OR originator_conversation_id = $2 LIMIT 1""",
            result.ConversationID or None,
            result.OriginatorConversationID or None,
        )
        if reversal is None:
            return Applied("unknown_id")
        if not is_verdict(result.ResultCode) or result.ResultCode in INCONCLUSIVE_CODES:
            return Applied("inconclusive", reversal["transaction_id"], result.ResultCode)
        outcome: str = await self.pool.fetchval(
            "SELECT ledger_apply_reversal($1, $2, $3, $4, $5)",
            reversal["id"],
            result.succeeded,
            result.TransactionID,
            result.ResultCode,
            result.ResultDesc[:500],
        )
        return Applied(outcome, reversal["transaction_id"], f"{result.ResultCode} {result.ResultDesc}"[:500])

    async def _check_soon(self, transaction_id: uuid.UUID) -> None:
        await self.pool.execute(
            """UPDATE payout_outbox SET check_due_at = now()
               WHERE transaction_id = $1 AND status IN ('sent', 'dead')""",
            transaction_id,
        )

    # --- top-ups -------------------------------------------------------------------------------------------

    async def _stk(self, body: Any, topup_id: uuid.UUID | None = None) -> Applied:
        try:
            cb = StkCallbackEnvelope.model_validate(body).Body.stkCallback
        except ValidationError as exc:
            log.warning("malformed STK callback: %s", exc.errors()[:1])
            return Applied("malformed", detail=str(exc)[:500])
        if not is_verdict(cb.ResultCode):
            # No verdict (blank, null, "0.0", a list...): the top-up stays pending for its STK query, which a
            # failed top-up would never get.
            log.error("STK callback %s with no verdict %r: left to the STK query", cb.CheckoutRequestID,
                      cb.ResultCode)  # fmt: skip
            return Applied("inconclusive", detail=f"result code {cb.ResultCode!r}"[:500])
        success = cb.ResultCode == "0"
        amount: Decimal | None = None
        if success and _has_item(cb.CallbackMetadata, "Amount"):
            raw = cb.item("Amount")
            amount = callback_amount(raw)
            if amount is None:
                # A success that names an amount we cannot read as money: never credit on it (the STK
                # query, which names no amount, still settles the push by its recorded amount).
                log.error("REFUSED STK callback %s: unreadable amount %r", cb.CheckoutRequestID, raw)
                return Applied("amount_mismatch", detail=f"unreadable amount {raw!r}"[:500])
        receipt = cb.item("MpesaReceiptNumber")
        outcome = await self.ledger.credit_topup(
            cb.CheckoutRequestID,
            success=success,
            amount=amount,
            receipt=str(receipt) if receipt is not None else None,
            error=None if success else f"M-Pesa {cb.ResultCode}: {cb.ResultDesc}"[:500],
            topup_id=topup_id,
        )
        if outcome == "amount_mismatch":
            log.error(
                "REFUSED STK callback %s: amount %s differs from the top-up's", cb.CheckoutRequestID, amount
            )
        elif outcome == "needs_query":
            # Another push for a top-up that has one: never credited by a callback's word (it may be forged
            # or replayed); the STK query of that push decides (TopupService.reconcile_due).
            log.warning("STK callback for another push %s of top-up %s: to be checked by an STK query",
                        cb.CheckoutRequestID, topup_id)  # fmt: skip
        elif outcome == "not_found":
            # Unknown for now: it may have overtaken the push's answer. Kept and retried for ten minutes.
            log.warning("STK callback for unknown checkout %s kept for later", cb.CheckoutRequestID)
            return Applied(outcome, detail=cb.CheckoutRequestID, done=False)
        log.info("top-up %s: %s", cb.CheckoutRequestID, outcome)
        return Applied(outcome)


def _has_item(metadata: CallbackMetadataBody | None, name: str) -> bool:
    return metadata is not None and any(it.Name == name for it in metadata.Item)


def _reported(result: ResultBody, *keys: str) -> Decimal | str | None:
    """The amount a result names under the first of `keys` it has: None when it names none, the raw value
    as text when it is not readable as money."""
    for key in keys:
        if result.ResultParameters is not None and any(
            p.Key == key for p in result.ResultParameters.ResultParameter
        ):
            raw = result.parameter(key)
            return callback_amount(raw) or repr(raw)
    return None
