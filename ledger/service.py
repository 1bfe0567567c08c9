"""`Ledger`: the Python face of the SQL functions in `sql/0003_ledger.sql`.

Each operation is one round trip (one prepared `SELECT ledger_...(...)`), so each is one database transaction:
a crash or a concurrent caller can never see half of it. The SQL functions raise SQLSTATE `OPL01` with a
stable code; here that becomes `LedgerError(code, message)` and no SQL text ever leaks to a caller.
Propose, revise, confirm and cancel go through the `_or_refusal` variants (sql/0017), which return the
refusal instead of raising it, so a caller's own transaction (a voice turn) survives a refusal without a
savepoint.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import asyncpg

from ledger.models import (
    Balance,
    C2bOutcome,
    ConfirmResult,
    LedgerError,
    Proposal,
    ProposalRequest,
    SettleOutcome,
    TopupOutcome,
    TransactionType,
    to_amount,
)
from ledger.phones import normalize_ke_phone
from ledger.pins import check_user_pin

LEDGER_SQLSTATE = "OPL01"

Clock = Callable[[], datetime]

_REFUSAL = "r.refusal_state, r.refusal, r.refusal_detail"
_PROPOSE = f"""SELECT {_REFUSAL}, (r.tx).*
               FROM ledger_propose_or_refusal($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                              $14::timestamptz, $15) r"""
_REVISE = f"""SELECT {_REFUSAL}, (r.tx).*
              FROM ledger_revise_or_refusal($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                                            $14::timestamptz, $15) r"""
_CONFIRM = f"""SELECT {_REFUSAL}, r.result
               FROM ledger_confirm_or_refusal($1, $2, $3, $4, $5::timestamptz) r"""
_CANCEL = f"SELECT {_REFUSAL}, (r.tx).* FROM ledger_cancel_or_refusal($1, $2, $3) r"


@asynccontextmanager
async def _transaction(db: asyncpg.Pool | asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """A database transaction on `db`: a connection of the pool, or the connection itself (a caller's turn,
    whose own transaction this one nests in as a savepoint)."""
    if isinstance(db, asyncpg.Connection):
        async with db.transaction():
            yield db
        return
    async with db.acquire() as conn, conn.transaction():
        yield conn


def _uuid(value: object, what: str = "id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise LedgerError(
            "not_found" if what == "transaction" else "invalid_input", f"bad {what} id"
        ) from exc


def _refusal(sqlstate: str, message: str | None, detail: str | None) -> LedgerError | None:
    """The refusal an error of the database stands for, or None when it is not one (a real failure)."""
    if sqlstate == LEDGER_SQLSTATE:
        return LedgerError(message or "refused", detail)
    if sqlstate == asyncpg.CheckViolationError.sqlstate:
        return LedgerError("invalid_input", "the values break a rule of the ledger")
    if sqlstate == asyncpg.ForeignKeyViolationError.sqlstate:
        return LedgerError("user_not_found", "no such user")
    if sqlstate == asyncpg.UniqueViolationError.sqlstate:
        return LedgerError("duplicate", "that already exists")
    if sqlstate.startswith("22"):  # data_exception, asyncpg's DataError (also its own argument checks)
        return LedgerError("invalid_input", "a value is not of the right kind or too large")
    return None


def _translate(exc: asyncpg.PostgresError) -> LedgerError:
    refusal = _refusal(
        str(exc.sqlstate or ""), str(exc.args[0]) if exc.args else None, getattr(exc, "detail", None)
    )
    if refusal is None:
        raise exc
    return refusal


def _unless_refused(row: asyncpg.Record | None) -> asyncpg.Record:
    """The row of an `_or_refusal` function (sql/0017); its refusal raised as a `LedgerError`."""
    assert row is not None
    if row["refusal_state"] is not None:
        refusal = _refusal(row["refusal_state"], row["refusal"], row["refusal_detail"])
        raise refusal or LedgerError("refused", row["refusal"])  # (the functions catch nothing else)
    return row


class Ledger:
    """The ledger over an asyncpg pool. `clock` (optional) fixes 'now' for expiry, limits and stamps;
    without it the database's `now()` is used. `proposal_ttl_seconds`: life of a read-back proposal."""

    def __init__(
        self, pool: asyncpg.Pool, *, clock: Clock | None = None, proposal_ttl_seconds: int = 120
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._ttl = proposal_ttl_seconds

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    def _now(self) -> datetime | None:
        return self._clock() if self._clock is not None else None

    async def _call(self, method: str, query: str, *args: Any) -> Any:
        try:
            return await getattr(self._pool, method)(query, *args)
        except asyncpg.PostgresError as exc:
            raise _translate(exc) from None

    @staticmethod
    def _fields(request: ProposalRequest) -> tuple[Any, ...]:
        phone = request.phone
        if request.type in (TransactionType.SEND_PHONE, TransactionType.BUY_GOODS_POCHI):
            phone = normalize_ke_phone(phone)
        return (
            request.type.value,
            request.amount,
            phone,
            request.till,
            request.paybill,
            request.account.upper(),
            request.agent,
            request.store,
            request.bank_code,
            request.confidence_score,
            request.voice_command_text,
        )

    # -- life of a transaction ------------------------------------------------------------------------------

    async def propose(self, user_id: uuid.UUID, request: ProposalRequest) -> Proposal:
        """A pending proposal holding amount + fee, or a `LedgerError` and nothing written."""
        row = await self._call(
            "fetchrow",
            _PROPOSE,
            _uuid(user_id, "user"),
            *self._fields(request),
            request.session_id,
            self._now(),
            self._ttl,
        )
        return Proposal.from_row(_unless_refused(row))

    async def revise(
        self, transaction_id: uuid.UUID, user_id: uuid.UUID, request: ProposalRequest
    ) -> Proposal:
        """A correction of a pending proposal: version + 1, hold and expiry renewed."""
        row = await self._call(
            "fetchrow",
            _REVISE,
            _uuid(transaction_id, "transaction"),
            _uuid(user_id, "user"),
            *self._fields(request),
            self._now(),
            self._ttl,
        )
        return Proposal.from_row(_unless_refused(row))

    async def confirm(
        self,
        transaction_id: uuid.UUID,
        user_id: uuid.UUID,
        version: int,
        *,
        voice_verified: bool,
        pin: str | None = None,
    ) -> ConfirmResult:
        """Posts the proposal once; a repeat (even concurrent) answers the first result again, with outcome
        `already_confirmed`, and moves no money.

        The ledger decides whether it needs the PIN (`sql/functions/ledger_needs_pin.sql`). Without `pin`, a
        payment that needs one is refused `pin_required` and stays pending, but one whose user has no PIN set
        or is locked out is voided (`pin_not_set`, `pin_locked`). `pin`: the digits the person typed, checked
        and counted towards the lockout in the same database transaction as the confirmation; a wrong one is
        counted (committed) and refused (`wrong_pin`), and the proposal stays pending."""
        if isinstance(version, bool) or not isinstance(version, int):
            raise LedgerError("stale_version", "the version must be an integer")
        if not -(2**31) <= version < 2**31:
            raise LedgerError("stale_version", "no such version")
        args = (
            _uuid(transaction_id, "transaction"),
            _uuid(user_id, "user"),
            version,
            bool(voice_verified),
            self._now(),
        )
        if pin is None:
            row = await self._call("fetchrow", _CONFIRM, *args)
        else:
            row = await self._confirm_with_pin(args, pin)
        data = cast(dict[str, Any], _unless_refused(row)["result"])
        if "error" in data:
            raise LedgerError(str(data["error"]), str(data.get("message") or ""))
        return ConfirmResult(**data)

    async def _confirm_with_pin(self, args: tuple[Any, ...], pin: str) -> asyncpg.Record:
        """The PIN attempt and the confirmation in one database transaction (the evidence of a right PIN
        lives only there); a wrong PIN is counted (committed) and refused."""
        outcome = "ok"
        row: asyncpg.Record | None = None
        try:
            async with _transaction(self._pool) as conn:
                check = await check_user_pin(conn, args[1], pin, now=args[4])
                outcome = check.outcome
                if outcome == "ok":
                    row = await conn.fetchrow(_CONFIRM, *args)
        except asyncpg.PostgresError as exc:
            raise _translate(exc) from None
        if row is None:
            code = {"wrong": "wrong_pin", "locked": "pin_locked", "not_set": "pin_not_set"}[outcome]
            raise LedgerError(code)
        return row

    async def cancel(
        self, transaction_id: uuid.UUID, user_id: uuid.UUID, reason: str = "cancelled"
    ) -> Proposal:
        """Voids a pending proposal's hold (idempotent); a confirmed one is `already_confirmed`."""
        row = await self._call(
            "fetchrow", _CANCEL, _uuid(transaction_id, "transaction"), _uuid(user_id, "user"), reason[:200]
        )
        return Proposal.from_row(_unless_refused(row))

    async def expire_due(self) -> int:
        """Cancels every pending proposal past its expiry by this ledger's clock (else the database's),
        waiting for locks; returns how many. The server's sweeper does not call it: it calls
        `sweep_expire_proposals` (`voice_server/sweeper.py`), batched, skipping locked rows."""
        count: int = await self._call("fetchval", "SELECT ledger_expire_due($1::timestamptz)", self._now())
        return count

    async def cancel_session(
        self, session_id: str, reason: str = "session_ended", *, user_id: uuid.UUID | None = None
    ) -> int:
        """Voids the pending proposals of a session: only `user_id`'s when given (what a user's request
        must pass); without it, the server-side variant for the sweeper voids the session's proposals."""
        if user_id is None:
            count: int = await self._call(
                "fetchval", "SELECT ledger_cancel_session_server($1, $2)", session_id, reason
            )
            return count
        count = await self._call(
            "fetchval", "SELECT ledger_cancel_session($1, $2, $3)", session_id, _uuid(user_id, "user"), reason
        )
        return count

    async def settle(
        self,
        transaction_id: uuid.UUID,
        *,
        success: bool,
        receipt: str | None = None,
        error: str | None = None,
    ) -> SettleOutcome:
        """The gateway's verdict, applied exactly once (see `ledger_settle`)."""
        outcome = await self._call(
            "fetchval",
            "SELECT ledger_settle($1, $2, $3, $4)",
            _uuid(transaction_id, "transaction"),
            bool(success),
            receipt,
            error,
        )
        return cast(SettleOutcome, outcome)

    # -- top-ups --------------------------------------------------------------------------------------------

    async def record_topup_request(
        self,
        user_id: uuid.UUID,
        amount: Decimal,
        phone: str,
        checkout_request_id: str | None,
        merchant_request_id: str | None,
        kind: str = "topup",
    ) -> uuid.UUID:
        """Records an STK push (status pending) so that its callback can credit it once."""
        value = to_amount(amount)
        if value <= 0:
            raise LedgerError("amount_not_positive", "a top-up is more than zero")
        if kind not in ("topup", "auto_topup"):
            raise LedgerError("invalid_input", "kind is topup or auto_topup")
        try:
            new_id: uuid.UUID = await self._pool.fetchval(
                """INSERT INTO mpesa_transactions
                       (user_id, amount, phone_number, checkout_request_id, merchant_request_id, kind, status)
                   VALUES ($1, $2, $3, $4, $5, $6, 'pending') RETURNING id""",
                _uuid(user_id, "user"),
                value,
                normalize_ke_phone(phone),
                checkout_request_id,
                merchant_request_id,
                kind,
            )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "idx_mpesa_one_pending_auto_topup":
                raise LedgerError("auto_topup_pending", "an auto top-up is already under way") from None
            raise LedgerError("duplicate", "that checkout request is already recorded") from None
        except asyncpg.PostgresError as exc:
            raise _translate(exc) from None
        return new_id

    async def attach_checkout(
        self, mpesa_transaction_id: uuid.UUID, checkout_request_id: str, merchant_request_id: str | None
    ) -> bool:
        """Names the STK push sent for a pending (auto) top-up row; False when it has one or is settled."""
        status = await self._call(
            "execute",
            """UPDATE mpesa_transactions SET checkout_request_id = $2, merchant_request_id = $3
               WHERE id = $1 AND status = 'pending' AND checkout_request_id IS NULL""",
            _uuid(mpesa_transaction_id, "transaction"),
            checkout_request_id,
            merchant_request_id,
        )
        return bool(status == "UPDATE 1")

    async def credit_topup(
        self,
        checkout_request_id: str,
        *,
        success: bool,
        amount: Decimal | None = None,
        receipt: str | None = None,
        error: str | None = None,
        topup_id: uuid.UUID | None = None,
        verified: bool = False,
    ) -> TopupOutcome:
        """An STK verdict: credits a top-up at most once (see `ledger_credit_stk` in sql/0008). `topup_id`:
        the top-up the push was sent for (named in its callback URL), which binds a push whose answer was
        lost. `verified`: the verdict comes from our own query to M-Pesa (STK query, Pull Transactions), not
        from a callback, so it may settle another push of the same top-up."""
        value = to_amount(amount) if amount is not None else None
        outcome = await self._call(
            "fetchval",
            "SELECT ledger_credit_stk($1, $2, $3, $4, $5, $6, $7)",
            topup_id,
            checkout_request_id,
            bool(success),
            value,
            receipt,
            error,
            bool(verified),
        )
        return cast(TopupOutcome, outcome)

    # -- C2B deposits (bank_to_mpesa) ---------------------------------------------------------------------

    async def credit_c2b(
        self,
        *,
        trans_id: str,
        bill_ref: str,
        amount: Decimal,
        short_code: str = "",
        trans_time: str = "",
        msisdn: str = "",
        first_name: str = "",
        transaction_type: str = "",
        source: str = "confirmation",
    ) -> C2bOutcome:
        """A deposit M-Pesa reported into the paybill, recorded once per TransID; it completes the
        bank_to_mpesa its reference names (see `ledger_credit_c2b` in sql/0008)."""
        outcome = await self._call(
            "fetchval",
            "SELECT ledger_credit_c2b($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            trans_id,
            bill_ref,
            to_amount(amount),
            short_code,
            trans_time,
            msisdn,
            first_name,
            transaction_type,
            source,
        )
        return cast(C2bOutcome, outcome)

    async def set_c2b_paybill(self, shortcode: str) -> None:
        """The paybill people are told to pay into (the server writes its setting at start-up)."""
        await self._call(
            "execute",
            "UPDATE c2b_paybill SET shortcode = $1, updated_at = now() WHERE shortcode <> $1",
            shortcode,
        )

    # -- reads (server side, no row level security: the server already knows whose it is) -------------------

    async def balance(self, user_id: uuid.UUID) -> Balance:
        row = await self._call(
            "fetchrow",
            "SELECT wallet_balance, held_balance FROM profiles WHERE id = $1",
            _uuid(user_id, "user"),
        )
        if row is None:
            raise LedgerError("user_not_found", "no such user")
        wallet = row["wallet_balance"] or Decimal("0.00")
        held = row["held_balance"]
        return Balance(wallet=wallet, held=held, available=wallet - held)

    async def get_transaction(self, transaction_id: uuid.UUID) -> Proposal | None:
        row = await self._call(
            "fetchrow", "SELECT * FROM transactions WHERE id = $1", _uuid(transaction_id, "transaction")
        )
        return Proposal.from_row(row) if row is not None else None
