"""What a person running the service asks M-Pesa for: the float of the payout shortcodes (Account Balance)
and the reversal of a payout sent to the wrong number. Both answer on a result URL; the server records the
answer (`CallbackProcessor`) and these read it back. Money moves only in SQL: `ledger_request_reversal` and
`ledger_apply_reversal` (sql/0021), which credit the sender once, when M-Pesa's result says the money is back.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from ledger.daraja.client import DarajaClient
from ledger.mpesa_callbacks import B2B_TYPES
from ledger.payouts import CallbackUrls


@dataclass(frozen=True)
class FloatAnswer:
    shortcode: str
    role: str  # "B2C" or "B2B"
    result_code: str | None  # None: no answer yet
    result_desc: str
    accounts: dict[str, Decimal]


async def ask_float(
    pool: asyncpg.Pool, client: DarajaClient, urls: CallbackUrls, *, wait: float = 30.0
) -> list[FloatAnswer]:
    """Ask the balance of the B2C shortcode (its Utility account pays phones) and of the B2B one (Working
    account pays tills, paybills, banks), then wait for the answers the server records."""
    asked: list[tuple[int, str, str]] = []
    roles = [("B2C", client.config.b2c_shortcode, False)]
    if client.config.b2b_party_a != client.config.b2c_shortcode:
        roles.append(("B2B", client.config.b2b_party_a, True))
    else:
        roles = [("B2C and B2B", client.config.b2c_shortcode, False)]
    for role, shortcode, b2b in roles:
        answer = await client.account_balance(
            result_url=urls.balance_result, timeout_url=urls.status_timeout, b2b=b2b
        )
        row_id: int = await pool.fetchval(
            """INSERT INTO mpesa_balance_queries (shortcode, conversation_id, originator_conversation_id)
               VALUES ($1, $2, $3) RETURNING id""",
            shortcode,
            answer.ConversationID or None,
            answer.OriginatorConversationID or None,
        )
        asked.append((row_id, shortcode, role))
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        rows = await pool.fetch(
            "SELECT id, result_code, result_desc, accounts FROM mpesa_balance_queries WHERE id = ANY($1)",
            [a[0] for a in asked],
        )
        by_id = {r["id"]: r for r in rows}
        if all(by_id[i]["result_code"] is not None for i, _, _ in asked):
            break
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    answers = []
    for row_id, shortcode, role in asked:
        row = by_id[row_id]
        accounts: dict[str, Any] = row["accounts"] or {}
        answers.append(
            FloatAnswer(
                shortcode,
                role,
                row["result_code"],
                row["result_desc"] or "",
                {k: Decimal(str(v)) for k, v in accounts.items()},
            )
        )
    return answers


@dataclass(frozen=True)
class ReversalAnswer:
    reversal_id: uuid.UUID
    status: str  # requested, sent, completed, failed
    detail: str


async def reverse_payout(
    pool: asyncpg.Pool,
    client: DarajaClient,
    urls: CallbackUrls,
    transaction_id: uuid.UUID,
    *,
    reason: str,
    requested_by: str,
    wait: float = 30.0,
) -> ReversalAnswer:
    """Record the request (refused unless the payout completed with a receipt, once per payout), send it
    to M-Pesa, then wait for the result the server applies."""
    reversal_id: uuid.UUID = await pool.fetchval(
        "SELECT ledger_request_reversal($1, $2, $3)", transaction_id, reason, requested_by
    )
    row = await pool.fetchrow(
        """SELECT v.receipt, v.amount, t.type FROM mpesa_reversals v JOIN transactions t
           ON t.id = v.transaction_id WHERE v.id = $1""",
        reversal_id,
    )
    assert row is not None
    answer = await client.reversal(
        receipt=row["receipt"],
        amount=row["amount"],
        result_url=urls.reversal_result,
        timeout_url=urls.status_timeout,
        remarks=f"Reversal: {reason}"[:100],
        b2b=row["type"] in B2B_TYPES,
    )
    await pool.execute(
        """UPDATE mpesa_reversals SET status = 'sent', conversation_id = $2, originator_conversation_id = $3
           WHERE id = $1 AND status = 'requested'""",
        reversal_id,
        answer.ConversationID or None,
        answer.OriginatorConversationID or None,
    )
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        done = await pool.fetchrow(
            "SELECT status, result_code, result_desc FROM mpesa_reversals WHERE id = $1", reversal_id
        )
        assert done is not None
        if done["status"] in ("completed", "failed") or asyncio.get_running_loop().time() > deadline:
            detail = f"{done['result_code'] or ''} {done['result_desc'] or ''}".strip()
            return ReversalAnswer(reversal_id, done["status"], detail)
        await asyncio.sleep(0.2)
