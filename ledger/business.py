"""Business wallets (sql/0028_business.sql): the Python face of the business functions.

Every rule (who may pay, the spender's daily limit, the approval amount, who may approve, exactly-once
decisions) is decided in SQL under the row locks; this module passes arguments and turns the database's
refusals into `LedgerError`s, like `ledger.service`."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg

from ledger.models import LedgerError, Proposal, ProposalRequest
from ledger.pins import check_user_pin
from ledger.service import _REFUSAL, Ledger, _transaction, _translate, _unless_refused

_PROPOSE = f"""SELECT {_REFUSAL}, (r.tx).*
               FROM business_propose_or_refusal($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                                $14, $15::timestamptz, $16) r"""
_REVISE = f"""SELECT {_REFUSAL}, (r.tx).*
              FROM business_revise_or_refusal($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                              $14::timestamptz, $15) r"""
_CONFIRM = f"""SELECT {_REFUSAL}, r.result
               FROM business_confirm_or_refusal($1, $2, $3, $4, $5::timestamptz) r"""

ROLES = ("owner", "admin", "spender", "viewer")


@dataclass(frozen=True)
class Wallet:
    """The wallet a voice session speaks for: a business (`name`, `colour`) or the person's own."""

    id: uuid.UUID
    name: str = ""
    colour: str = ""
    role: str = ""

    @property
    def is_business(self) -> bool:
        return bool(self.name)


async def wallet_for(
    db: asyncpg.Pool | asyncpg.Connection, user_id: uuid.UUID, business_id: uuid.UUID | None
) -> Wallet:
    """The wallet `user_id` may speak for: their own, or a business they are an active member of (any
    role: a viewer's session hears the balance and is refused payments by the ledger). A stranger to the
    business gets `not_found`."""
    if business_id is None or business_id == user_id:
        return Wallet(user_id)
    row = await db.fetchrow(
        """SELECT b.id, b.display_name, b.colour, m.role FROM businesses b
           JOIN business_members m ON m.business_id = b.id
           WHERE b.id = $1 AND m.user_id = $2 AND m.removed_at IS NULL""",
        business_id,
        user_id,
    )
    if row is None:
        raise LedgerError("not_found", "no such business")
    return Wallet(row["id"], row["display_name"], row["colour"], row["role"])


class BusinessLedger:
    """A member's payments from a business wallet, on the connection of a voice turn (or a pool)."""

    def __init__(self, ledger: Ledger, wallet: Wallet, member: uuid.UUID) -> None:
        self.ledger = ledger
        self.wallet = wallet
        self.member = member

    async def propose(self, request: ProposalRequest) -> Proposal:
        row = await self.ledger._call(
            "fetchrow",
            _PROPOSE,
            self.wallet.id,
            self.member,
            *Ledger._fields(request),
            request.session_id,
            self.ledger._now(),
            self.ledger._ttl,
        )
        return Proposal.from_row(_unless_refused(row))

    async def revise(self, transaction_id: uuid.UUID, request: ProposalRequest) -> Proposal:
        row = await self.ledger._call(
            "fetchrow",
            _REVISE,
            transaction_id,
            self.member,
            *Ledger._fields(request),
            self.ledger._now(),
            self.ledger._ttl,
        )
        return Proposal.from_row(_unless_refused(row))

    async def confirm(
        self, transaction_id: uuid.UUID, version: int, *, voice_verified: bool
    ) -> dict[str, Any]:
        """The member's confirmation: the ledger's result (outcome confirmed | already_confirmed |
        awaiting_approval), or a `LedgerError`. The member's PIN, when typed, was checked by the caller in
        the same database transaction (its evidence is what this confirmation takes)."""
        if isinstance(version, bool) or not isinstance(version, int) or not -(2**31) <= version < 2**31:
            raise LedgerError("stale_version", "no such version")
        row = await self.ledger._call(
            "fetchrow",
            _CONFIRM,
            transaction_id,
            self.member,
            version,
            bool(voice_verified),
            self.ledger._now(),
        )
        data = cast(dict[str, Any], _unless_refused(row)["result"])
        if "error" in data:
            raise LedgerError(str(data["error"]), str(data.get("message") or ""))
        return data


async def _business_row(pool: asyncpg.Pool, query: str, *args: Any) -> asyncpg.Record:
    """The one row a business function returns; its refusal raised as a `LedgerError` (`Ledger._call`)."""
    row = await Ledger(pool)._call("fetchrow", query, *args)
    assert row is not None
    return cast(asyncpg.Record, row)


async def create_business(
    pool: asyncpg.Pool, owner: uuid.UUID, name: str, colour: str | None, *, now: datetime | None = None
) -> asyncpg.Record:
    return await _business_row(
        pool, "SELECT * FROM business_create($1, $2, $3, $4::timestamptz)", owner, name, colour, now
    )


async def invite(
    pool: asyncpg.Pool,
    business: uuid.UUID,
    by: uuid.UUID,
    phone: str,
    role: str,
    daily_limit: Decimal | None,
    approval_amount: Decimal | None,
) -> asyncpg.Record:
    return await _business_row(
        pool,
        "SELECT * FROM business_invite($1, $2, $3, $4, $5, $6)",
        business,
        by,
        phone,
        role,
        daily_limit,
        approval_amount,
    )


async def change_member(
    pool: asyncpg.Pool,
    business: uuid.UUID,
    by: uuid.UUID,
    member: uuid.UUID,
    role: str | None,
    daily_limit: Decimal | None,
    approval_amount: Decimal | None,
) -> asyncpg.Record:
    return await _business_row(
        pool,
        "SELECT * FROM business_member_change($1, $2, $3, $4, $5, $6)",
        business,
        by,
        member,
        role,
        daily_limit,
        approval_amount,
    )


async def remove_member(
    pool: asyncpg.Pool, business: uuid.UUID, by: uuid.UUID, member: uuid.UUID
) -> asyncpg.Record:
    return await _business_row(pool, "SELECT * FROM business_member_remove($1, $2, $3)", business, by, member)


async def decide(
    pool: asyncpg.Pool,
    transaction_id: uuid.UUID,
    by: uuid.UUID,
    *,
    approve: bool,
    pin: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An owner's or admin's decision on a payment waiting for approval: their PIN (counted towards their
    lockout, committed even when wrong) and the decision in one database transaction."""
    outcome = "ok"
    result: dict[str, Any] | None = None
    try:
        async with _transaction(pool) as conn:
            check = await check_user_pin(conn, by, pin, now=now)
            outcome = check.outcome
            if outcome == "ok":
                value = await conn.fetchval(
                    "SELECT business_decide($1, $2, $3, $4::timestamptz)", transaction_id, by, approve, now
                )
                result = cast(dict[str, Any], json.loads(value) if isinstance(value, str) else value)
    except asyncpg.PostgresError as exc:
        raise _translate(exc) from None
    if result is None:
        code = {"wrong": "wrong_pin", "locked": "pin_locked", "not_set": "pin_not_set"}[outcome]
        raise LedgerError(code)
    return result
