"""The six invariants of ledger.md as SQL checks. Each query returns one row per violation;
`check_invariants` runs them all and returns readable violations (an empty list means the books are right).

`user_ids` limits the checks to those users (tests share a database); None checks everybody.

How each is made checkable:
1. `profiles.held_balance` must equal the sum of `hold_amount` of the user's pending proposals.
2. `balance_history.seq` orders a user's rows as they were written; the first is the opening row.
3. The reasons of a transaction's rows: debit + fee once each when it reached processing, refund + fee_refund
   once each when it failed, bank_credit + bank_credit_fee once each for a completed bank_to_mpesa, and
   one `reversal` of the amount for a completed payout whose reversal M-Pesa completed (mpesa_reversals).
4. `payout_outbox.transaction_id` is unique; every transaction that reached processing has its row, no other.
   A bank_to_mpesa has no outbox row but one `c2b_expected_deposits` row (awaiting while processing,
   received once completed).
5. wallets + (amount + fee of payouts in processing or completed)
   = opening balances + completed top-ups + completed bank credits net of their fee
     + completed reversals (the amount M-Pesa took back from a recipient).
6. Every positive `balance_history` row is backed by an external fact: the user's first row (the opening
   balance), a completed top-up of that amount with an M-Pesa receipt, or with a successful STK callback or
   STK query answer recorded for its push (`mpesa_stk_queries`, sql/0018), the refund of a failed
   payout, the credit of a bank_to_mpesa completed by the C2B deposit (TransID) of that amount, or the
   amount of a payout whose reversal M-Pesa completed (with the reversal's receipt). A credit written any
   other way (say `update_user_balance` called by hand) is reported.
And a seventh, of bookkeeping: the per-day usage counters behind the limits agree with `transactions`.

Rows marked `adopted` (sql/0030: copied from a database of the earlier schema by `migrate --adopt --apply`)
are left out of every check: no money moved through the ledger for them. The books of an adopted wallet start
at the opening row the adoption wrote, its first row that is not adopted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

# $1: uuid[] of users to check, or NULL for all.
_SCOPE = "($1::uuid[] IS NULL OR {col} = ANY($1::uuid[]))"

CHECKS: dict[str, str] = {
    "1_balances_non_negative": f"""
        SELECT p.id AS user_id, p.wallet_balance, p.held_balance, coalesce(h.holds, 0) AS pending_holds
        FROM profiles p
        LEFT JOIN (SELECT user_id, sum(hold_amount) AS holds FROM transactions
                   WHERE status = 'pending' AND NOT adopted GROUP BY user_id) h ON h.user_id = p.id
        WHERE {_SCOPE.format(col="p.id")}
          AND (p.wallet_balance < 0 OR p.held_balance < 0 OR p.wallet_balance - p.held_balance < 0
               OR p.held_balance <> coalesce(h.holds, 0))""",
    "2_history_chains": f"""
        WITH h AS (
            SELECT user_id, seq, reason, transaction_id, previous_balance, new_balance, change_amount,
                   lag(new_balance) OVER w AS prior_new, row_number() OVER w AS n
            FROM balance_history WHERE NOT adopted AND {_SCOPE.format(col="user_id")}
            WINDOW w AS (PARTITION BY user_id ORDER BY seq)
        ), per_user AS (
            SELECT user_id,
                   count(*) FILTER (WHERE reason = 'opening_balance') AS openings,
                   bool_and(n > 1 OR (reason = 'opening_balance' AND previous_balance = 0
                                      AND transaction_id IS NULL)) AS starts_with_opening,
                   bool_and(n = 1 OR previous_balance = prior_new) AS chained,
                   bool_and(new_balance = previous_balance + change_amount) AS rows_add_up,
                   sum(change_amount) AS total,
                   sum(change_amount) FILTER (WHERE reason <> 'opening_balance') AS since_opening,
                   max(new_balance) FILTER (WHERE reason = 'opening_balance') AS opening,
                   (array_agg(new_balance ORDER BY seq DESC))[1] AS last_balance
            FROM h GROUP BY user_id
        )
        SELECT p.id AS user_id, u.openings, u.starts_with_opening, u.chained, u.rows_add_up, u.total,
               u.last_balance, p.wallet_balance
        FROM profiles p LEFT JOIN per_user u ON u.user_id = p.id
        WHERE {_SCOPE.format(col="p.id")}
          AND (u.user_id IS NULL OR u.openings <> 1 OR NOT u.starts_with_opening OR NOT u.chained
               OR NOT u.rows_add_up OR u.last_balance <> p.wallet_balance
               OR coalesce(u.since_opening, 0) <> p.wallet_balance - u.opening)""",
    "3_debited_once_refunded_once": f"""
        WITH r AS (
            SELECT transaction_id,
                   count(*) FILTER (WHERE reason = 'debit') AS debits,
                   coalesce(sum(change_amount) FILTER (WHERE reason = 'debit'), 0) AS debited,
                   count(*) FILTER (WHERE reason = 'fee') AS fees,
                   coalesce(sum(change_amount) FILTER (WHERE reason = 'fee'), 0) AS fee_debited,
                   count(*) FILTER (WHERE reason = 'refund') AS refunds,
                   coalesce(sum(change_amount) FILTER (WHERE reason = 'refund'), 0) AS refunded,
                   count(*) FILTER (WHERE reason = 'fee_refund') AS fee_refunds,
                   coalesce(sum(change_amount) FILTER (WHERE reason = 'fee_refund'), 0) AS fee_refunded,
                   count(*) FILTER (WHERE reason = 'bank_credit') AS credits,
                   coalesce(sum(change_amount) FILTER (WHERE reason = 'bank_credit'), 0) AS credited,
                   count(*) FILTER (WHERE reason = 'bank_credit_fee') AS credit_fees,
                   coalesce(sum(change_amount) FILTER (WHERE reason = 'bank_credit_fee'), 0) AS credit_fee,
                   count(*) FILTER (WHERE reason = 'reversal') AS reversals,
                   coalesce(sum(change_amount) FILTER (WHERE reason = 'reversal'), 0) AS reversed,
                   count(*) FILTER (WHERE reason NOT IN ('debit', 'fee', 'refund', 'fee_refund',
                                                        'bank_credit',
                                                        'bank_credit_fee', 'reversal')) AS others
            FROM balance_history WHERE transaction_id IS NOT NULL AND NOT adopted GROUP BY transaction_id
        ), e AS (
            SELECT t.id, t.type, t.status, t.amount, t.fee,
                   coalesce(r.debits, 0) AS debits, coalesce(r.debited, 0) AS debited,
                   coalesce(r.fees, 0) AS fees, coalesce(r.fee_debited, 0) AS fee_debited,
                   coalesce(r.refunds, 0) AS refunds, coalesce(r.refunded, 0) AS refunded,
                   coalesce(r.fee_refunds, 0) AS fee_refunds, coalesce(r.fee_refunded, 0) AS fee_refunded,
                   coalesce(r.credits, 0) AS credits, coalesce(r.credited, 0) AS credited,
                   coalesce(r.credit_fees, 0) AS credit_fees, coalesce(r.credit_fee, 0) AS credit_fee,
                   coalesce(r.others, 0) AS others,
                   coalesce(r.reversals, 0) AS reversals, coalesce(r.reversed, 0) AS reversed,
                   EXISTS (SELECT 1 FROM mpesa_reversals v
                           WHERE v.transaction_id = t.id AND v.status = 'completed')
                       AND t.status = 'completed' AS reversal_due,
                   t.type <> 'bank_to_mpesa'
                       AND t.status IN ('processing', 'completed', 'failed') AS debited_due,
                   t.type <> 'bank_to_mpesa' AND t.status = 'failed' AS refund_due,
                   t.type = 'bank_to_mpesa' AND t.status = 'completed' AS credit_due
            FROM transactions t LEFT JOIN r ON r.transaction_id = t.id
            WHERE NOT t.adopted AND {_SCOPE.format(col="t.user_id")}
        )
        SELECT id, type, status, debits, fees, refunds, fee_refunds, credits, credit_fees, others FROM e
        WHERE others <> 0
           OR (debited_due AND NOT (debits = 1 AND debited = -amount AND fees = 1 AND fee_debited = -fee))
           OR (NOT debited_due AND (debits <> 0 OR fees <> 0))
           OR (refund_due AND NOT (refunds = 1 AND refunded = amount
                                    AND fee_refunds = 1 AND fee_refunded = fee))
           OR (NOT refund_due AND (refunds <> 0 OR fee_refunds <> 0))
           OR (credit_due AND NOT (credits = 1 AND credited = amount
                                    AND credit_fees = 1 AND credit_fee = -fee))
           OR (NOT credit_due AND (credits <> 0 OR credit_fees <> 0))
           OR (reversal_due AND NOT (reversals = 1 AND reversed = amount))
           OR (NOT reversal_due AND reversals <> 0)""",
    "3b_topups_credited_once": f"""
        SELECT m.id, m.status, count(b.id) AS credits, coalesce(sum(b.change_amount), 0) AS credited, m.amount
        FROM mpesa_transactions m LEFT JOIN balance_history b ON b.topup_id = m.id AND NOT b.adopted
        WHERE NOT m.adopted AND {_SCOPE.format(col="m.user_id")}
        GROUP BY m.id
        HAVING (m.status = 'completed' AND NOT (count(b.id) = 1 AND sum(b.change_amount) = m.amount))
            OR (m.status <> 'completed' AND count(b.id) <> 0)""",
    "4_one_payout_per_transaction": f"""
        SELECT t.id, t.type, t.status, count(o.id) AS outbox_rows,
               array_agg(o.kind) FILTER (WHERE o.id IS NOT NULL) AS kinds,
               array_agg(o.status) FILTER (WHERE o.id IS NOT NULL) AS outbox_statuses
        FROM transactions t LEFT JOIN payout_outbox o ON o.transaction_id = t.id
        LEFT JOIN c2b_expected_deposits e ON e.transaction_id = t.id
        WHERE NOT t.adopted AND {_SCOPE.format(col="t.user_id")}
        GROUP BY t.id
        HAVING (t.status IN ('processing', 'completed', 'failed'))
                   <> (count(o.id) + count(e.transaction_id) = 1)
            OR count(o.id) > 1
            OR bool_or(o.user_id <> t.user_id)
            OR bool_or(o.kind <> CASE WHEN t.type = 'bank_to_mpesa' THEN 'bank_credit'
                                       ELSE 'mpesa_payout' END)
            OR (t.type <> 'bank_to_mpesa' AND count(e.transaction_id) > 0)
            OR (t.status IN ('completed', 'failed') AND bool_or(o.status <> 'settled'))
            OR (t.status = 'processing' AND bool_or(o.status = 'settled'))
            OR (t.status = 'processing' AND bool_or(e.status <> 'awaiting'))
            OR (t.status = 'completed' AND bool_or(e.status <> 'received'))""",
    "5_money_conserved": f"""
        WITH w AS (SELECT coalesce(sum(wallet_balance), 0) AS wallets FROM profiles
                   WHERE {_SCOPE.format(col="id")}),
             paid AS (SELECT coalesce(sum(amount + fee), 0) AS out FROM transactions
                      WHERE {_SCOPE.format(col="user_id")} AND NOT adopted AND type <> 'bank_to_mpesa'
                        AND status IN ('processing', 'completed')),
             bank AS (SELECT coalesce(sum(amount - fee), 0) AS bank_in FROM transactions
                      WHERE {_SCOPE.format(col="user_id")}
                        AND NOT adopted AND type = 'bank_to_mpesa' AND status = 'completed'),
             opening AS (SELECT coalesce(sum(change_amount), 0) AS opened FROM balance_history
                         WHERE {_SCOPE.format(col="user_id")} AND NOT adopted
                           AND reason = 'opening_balance'),
             topups AS (SELECT coalesce(sum(amount), 0) AS topped FROM mpesa_transactions
                        WHERE {_SCOPE.format(col="user_id")} AND NOT adopted AND status = 'completed'),
             back AS (SELECT coalesce(sum(v.amount), 0) AS reversed FROM mpesa_reversals v
                      JOIN transactions t ON t.id = v.transaction_id
                      WHERE {_SCOPE.format(col="t.user_id")} AND NOT t.adopted AND v.status = 'completed')
        SELECT w.wallets, paid.out, opening.opened, topups.topped, bank.bank_in, back.reversed
        FROM w, paid, bank, opening, topups, back
        WHERE w.wallets + paid.out <> opening.opened + topups.topped + bank.bank_in + back.reversed""",
    "6_credits_backed_by_external_facts": f"""
        SELECT b.user_id, b.seq, b.reason, b.change_amount, b.transaction_id, b.topup_id
        FROM balance_history b
        LEFT JOIN transactions t ON t.id = b.transaction_id
        LEFT JOIN mpesa_transactions m ON m.id = b.topup_id
        LEFT JOIN c2b_deposits d ON d.transaction_id = b.transaction_id AND d.outcome = 'credited'
        WHERE {_SCOPE.format(col="b.user_id")} AND NOT b.adopted AND b.change_amount > 0
          AND NOT (
              (b.reason = 'opening_balance' AND b.transaction_id IS NULL AND b.topup_id IS NULL
               AND b.previous_balance = 0
               AND b.seq = (SELECT min(f.seq) FROM balance_history f
                            WHERE f.user_id = b.user_id AND NOT f.adopted))
              OR (b.reason = 'topup' AND b.transaction_id IS NULL AND m.user_id = b.user_id
                  AND m.status = 'completed' AND m.amount = b.change_amount
                  AND (m.mpesa_receipt_number IS NOT NULL
                       OR EXISTS (SELECT 1 FROM mpesa_callbacks c
                                  WHERE c.kind = 'stk' AND c.result_code = '0'
                                    AND c.checkout_request_id = m.checkout_request_id)
                       OR EXISTS (SELECT 1 FROM mpesa_stk_queries q
                                  WHERE q.result_code = '0'
                                    AND q.checkout_request_id = m.checkout_request_id)))
              OR (b.reason IN ('refund', 'fee_refund') AND b.topup_id IS NULL AND t.user_id = b.user_id
                  AND t.type <> 'bank_to_mpesa' AND t.status = 'failed'
                  AND b.change_amount = CASE WHEN b.reason = 'refund' THEN t.amount ELSE t.fee END)
              OR (b.reason = 'bank_credit' AND b.topup_id IS NULL AND t.user_id = b.user_id
                  AND t.type = 'bank_to_mpesa' AND t.status = 'completed'
                  AND d.amount = b.change_amount AND d.trans_id = t.mpesa_transaction_id)
              OR (b.reason = 'reversal' AND b.topup_id IS NULL AND t.user_id = b.user_id
                  AND t.status = 'completed'
                  AND EXISTS (SELECT 1 FROM mpesa_reversals v
                              WHERE v.transaction_id = t.id AND v.status = 'completed'
                                AND v.amount = b.change_amount AND v.reversal_receipt <> ''))
          )""",
    "7_usage_matches_transactions": f"""
        WITH t AS (
            SELECT user_id, (confirmed_at AT TIME ZONE 'Africa/Nairobi')::date AS day, count(*) AS n,
                   coalesce(sum(amount) FILTER (WHERE status IN ('processing', 'completed')), 0) AS amt
            FROM transactions
            WHERE confirmed_at IS NOT NULL AND NOT adopted AND {_SCOPE.format(col="user_id")}
            GROUP BY 1, 2
        ), u AS (SELECT * FROM ledger_usage WHERE {_SCOPE.format(col="user_id")})
        SELECT user_id, day, t.n, u.confirmed_count, t.amt, u.confirmed_amount
        FROM t FULL JOIN u USING (user_id, day)
        WHERE coalesce(t.n, 0) <> coalesce(u.confirmed_count, 0)
           OR coalesce(t.amt, 0) <> coalesce(u.confirmed_amount, 0)""",
}


async def check_invariants(
    conn: asyncpg.Pool | asyncpg.Connection, user_ids: Sequence[uuid.UUID] | None = None
) -> list[str]:
    """Every violation of the invariants, as 'check: row' strings; [] when the books are right.

    Run it on a quiet database (no ledger call in flight) or in one REPEATABLE READ snapshot (a pool is
    given a single such transaction), so that all checks see the same moment."""
    ids = list(user_ids) if user_ids is not None else None
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            return await _run(c, ids)
    return await _run(conn, ids)


async def _run(conn: asyncpg.Connection, ids: list[uuid.UUID] | None) -> list[str]:
    if conn.is_in_transaction():
        return await _fetch_all(conn, ids)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _fetch_all(conn, ids)
    except asyncpg.ActiveSQLTransactionError:
        # A pooled connection handed back inside a transaction its client lost track of (a task cancelled
        # in the middle of BEGIN): end it, then check in a snapshot of our own.
        await conn.execute("ROLLBACK")
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _fetch_all(conn, ids)


async def _fetch_all(conn: asyncpg.Connection, ids: list[uuid.UUID] | None) -> list[str]:
    violations: list[str] = []
    for name, query in CHECKS.items():
        for row in await conn.fetch(query, ids):
            violations.append(f"{name}: {dict(row)}")
    return violations
