"""The session driver: one turn of a voice conversation, at the I/O edge.

Loads and locks the `voice_sessions` row, feeds the event to the pure dialogue, carries out its actions
against the ledger (and feeds the answers back), stores the new dialogue state and returns what to say and
send. Money is decided in the ledger only (who may spend included: the ledger says what a proposal needs and
refuses what the rules refuse); the network layers translate to and from these calls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

import asyncpg
from pydantic import ValidationError

from intents.contacts import index_of
from ledger.business import BusinessLedger, wallet_for
from ledger.models import LedgerError, Proposal, ProposalRequest
from ledger.pins import check_user_pin
from ledger.service import Ledger
from voice_server.app_api.analytics import spending_told
from voice_server.conversation.records import Keep, turn_record
from voice_server.dialogue import machine
from voice_server.dialogue.events import (
    BalanceTold,
    Committed,
    ConfirmRefused,
    Event,
    HistoryItem,
    HistoryTold,
    PinResult,
    ProposalMade,
    ProposalRefused,
    ProposalView,
    Tick,
    ToolPropose,
    UserEvent,
    Utterance,
)
from voice_server.dialogue.phases import Phase
from voice_server.dialogue.state import (
    Action,
    Cancel,
    CheckPin,
    Confirm,
    DialogueState,
    EndSession,
    FetchBalance,
    FetchHistory,
    FetchSpending,
    Note,
    Propose,
    Show,
    Speak,
    Step,
    World,
    recipient_of,
)
from voice_server.dialogue.wording import plain_amount, spoken_phone
from voice_server.receipts import tell_receipts
from voice_server.settings import Settings

log = logging.getLogger(__name__)

Language = Literal["en", "sw"]
Clock = Callable[[], datetime]


ClosedCode = Literal["not_found", "expired", "ended", "forbidden"]


class SessionClosed(Exception):
    """The session cannot take this event: `not_found`, `expired`, `ended` or `forbidden` (another user's)."""

    def __init__(self, code: ClosedCode, message: str = "") -> None:
        super().__init__(message or code)
        self.code: ClosedCode = code


@dataclass(frozen=True)
class Say:
    text: str
    language: Language


@dataclass(frozen=True)
class ClientEvent:
    """One `client_tool_call` the app shows; `parameters` are JSON-ready (amounts as "1500.00" strings)."""

    tool_name: Literal["show_proposal", "request_pin", "show_receipt", "balance_update"]
    parameters: dict[str, object]


@dataclass(frozen=True)
class TurnResult:
    say: list[Say]
    client_events: list[ClientEvent]
    outcome: str  # proposed | asked | committed | cancelled | rejected | answered | ended | ignored
    proposal: dict[str, object] | None
    asked: str | None = None
    rejected: str | None = None
    committed: dict[str, object] | None = None
    balance: str | None = None
    language: Language = "en"
    cancelled: bool = False  # a proposal (or a half-filled request) was dropped in this turn
    pin_aloud: bool = False  # the utterance was a PIN said aloud: nothing of it may be kept


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    agent_id: str = "ongea-pesa"
    language: Language = "en"
    extra: dict[str, object] = field(default_factory=dict)


# The session row, locked: what every turn starts with.
_LOCK = """SELECT id, session_id, user_id, wallet_id, status, expires_at,
                  dialogue_state::text AS dialogue_state
           FROM voice_sessions WHERE session_id = $1 FOR UPDATE"""

# The same, with the facts about the user a turn's dialogue needs (`World`), in the same round trip.
# A statement that waited for the lock (another turn of this session was running) sees the locked row as that
# turn left it but everything else as it was when the statement began: `world_fresh` is false then (the row
# we locked is not the version our snapshot had) and the facts are read again by a statement of their own.
_LOCK_WITH_WORLD = """
    SELECT s.id, s.session_id, s.user_id, s.wallet_id, s.status, s.expires_at,
           s.dialogue_state::text AS dialogue_state,
           (SELECT v.xmin FROM voice_sessions v WHERE v.id = s.id) = s.xmin AS world_fresh,
           CASE WHEN $3 THEN (
               SELECT jsonb_agg(jsonb_build_object('id', c.id::text, 'name', c.name,
                                                   'phone_number', coalesce(c.phone_number, ''),
                                                   'nickname', c.nickname)
                                ORDER BY c.favorite DESC NULLS LAST, c.name, c.id)
               FROM contacts c WHERE c.user_id = $2)
           END AS contacts
    FROM voice_sessions s
    WHERE s.session_id = $1
    FOR UPDATE OF s
"""

# The turn's state and record (sql/functions/voice_turn_store.sql) and the COMMIT, in one message: a simple
# query, which carries no parameters, so the one argument is a JSON literal, its quotes doubled (safe only
# with standard_conforming_strings, which PostgreSQL has on unless a setting turns it off: then the two go as
# two round trips). This is why a turn begins and ends its transaction by hand, not with asyncpg's
# `transaction()` (which would send its own COMMIT); nothing inside a turn opens a transaction of its own.
_STORE_AND_COMMIT = "SELECT voice_turn_store('{turn}'::jsonb); COMMIT"


async def _store_and_commit(
    conn: asyncpg.Connection,
    session: uuid.UUID,
    state_json: str,
    language: str,
    now: datetime,
    record: dict[str, Any] | None,
) -> None:
    """Stores the turn (its dialogue state, `state_json`; "null" when already stored) and its record, and
    commits the turn's transaction, in one round trip."""
    head = json.dumps(
        {"session": session, "at": now.isoformat(), "language": language, "record": record},
        default=str,
        separators=(",", ":"),
    )
    turn = f'{head[:-1]},"state":{state_json}}}'
    if conn.get_settings().standard_conforming_strings == "on":
        await conn.execute(_STORE_AND_COMMIT.format(turn=turn.replace("'", "''")))
    else:
        await conn.execute("SELECT voice_turn_store($1::text::jsonb)", turn)
        await conn.execute("COMMIT")


_STORE = """UPDATE voice_sessions
            SET dialogue_state = $2::text::jsonb, language = $3, turns = turns + 1, last_turn_at = $4
            WHERE id = $1"""


class SessionDriver:
    """Runs turns of voice sessions; safe to share between connections and processes: each turn is one
    database transaction holding the session row's lock, with the ledger's calls inside it (their refusals
    come back as results, so the transaction survives them), so the dialogue state and the money it moved
    commit together, and a tap and a spoken yes arriving together are applied one after the other (the
    second finds nothing left to confirm). A turn is four round trips to PostgreSQL: BEGIN, the locked row
    with the user's facts (lock and load), the ledger call if any (act), and the state with the turn's
    record and the COMMIT (store)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, *, clock: Clock | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self._clock = clock

    def now(self) -> datetime:
        return self._clock() if self._clock is not None else datetime.now(UTC)

    def _ledger(self, conn: asyncpg.Connection) -> Ledger:
        # The ledger only calls fetchrow/fetchval/execute, which a connection has too: on the locked
        # connection its functions run inside this turn's transaction.
        return Ledger(
            cast(asyncpg.Pool, conn),
            clock=self.now,
            proposal_ttl_seconds=self.settings.proposal_ttl_seconds,
        )

    # --- sessions ----------------------------------------------------------------------------------------

    async def start_session(
        self,
        user_id: uuid.UUID,
        *,
        agent_id: str = "ongea-pesa",
        language: str | None = None,
        signed_url: str | None = None,
        wallet_id: uuid.UUID | None = None,
    ) -> SessionInfo:
        """A new active session (expires_at = now + session_ttl_seconds) with a fresh dialogue; `wallet_id`:
        the business wallet it speaks for (checked by the caller: `ledger.business.wallet_for`), else the
        user's own."""
        lang: Language = "sw" if language == "sw" else "en"
        now = self.now()
        expires = now + timedelta(seconds=self.settings.session_ttl_seconds)
        session_id = "vs_" + secrets.token_urlsafe(18)
        state = DialogueState(language=lang, session_expires_at=expires.timestamp())
        try:
            row_id = await self.pool.fetchval(
                """INSERT INTO voice_sessions (user_id, session_id, agent_id, signed_url, status, created_at,
                                               expires_at, dialogue_state, language, wallet_id)
                   VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9) RETURNING id""",
                user_id,
                session_id,
                agent_id[:200],
                signed_url,
                now,
                expires,
                state.model_dump(mode="json"),
                lang,
                wallet_id if wallet_id != user_id else None,
            )
        except asyncpg.ForeignKeyViolationError:
            raise LedgerError("user_not_found", "no such user") from None
        return SessionInfo(session_id, row_id, user_id, expires, agent_id[:200], lang)

    async def greeting(
        self, session_id: str, user_id: uuid.UUID, *, language: str | None = None
    ) -> TurnResult:
        """The first message of a connection; `language` (en or sw, what the client says it speaks) sets
        the language of the greeting and of the answers until the person speaks another."""
        return await self._turn(session_id, user_id, None, language=language)

    async def handle(
        self, session_id: str, user_id: uuid.UUID, event: UserEvent, *, keep: Keep | None = None
    ) -> TurnResult:
        """One event of the person (speech, tap, PIN, tool call, tick): the dialogue's answer. `keep`: the
        turn is kept in `voice_session_turns` (`records.turn_record`), in its own transaction."""
        return await self._turn(session_id, user_id, event, keep=keep)

    async def end_session(
        self, session_id: str, user_id: uuid.UUID, status: Literal["ended", "expired"] = "ended"
    ) -> None:
        """Ends the session (idempotent) and voids its pending proposals."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._lock(conn, session_id, user_id, allow_closed=True)
            if row["status"] != "active":
                return
            await self._close(conn, row, status)

    # --- one turn ----------------------------------------------------------------------------------------

    async def _turn(
        self,
        session_id: str,
        user_id: uuid.UUID,
        event: UserEvent | None,
        *,
        language: str | None = None,
        keep: Keep | None = None,
    ) -> TurnResult:
        expired = False
        async with self.pool.acquire() as conn:
            await conn.execute("BEGIN")
            try:
                row = await self._lock(conn, session_id, user_id, world=True, contacts=_needs_contacts(event))
                now = self.now()
                if now >= row["expires_at"]:
                    await self._close(conn, row, "expired")
                    await conn.execute("COMMIT")
                    expired = True
                else:
                    result = await self._act(conn, row, event, now, language, keep)
            except BaseException:
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                raise
        if expired:
            raise SessionClosed("expired", "the session has expired")
        return result

    async def _act(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        event: UserEvent | None,
        now: datetime,
        language: str | None,
        keep: Keep | None,
    ) -> TurnResult:
        """The turn on its locked row: the dialogue and the ledger calls it asks for, then the state and the
        turn's record stored and committed (one round trip: `_store_and_commit`)."""
        state = _stored_state(row["dialogue_state"])
        state.session_expires_at = row["expires_at"].timestamp()
        if row["world_fresh"]:
            world = self._world_of(row)
        else:
            world = await self._world(conn, row["user_id"], event)
        told: list[Action] = []
        if event is None and language in ("en", "sw"):
            state.language = cast(Language, language)
        if event is None or isinstance(event, Tick):  # receipts that arrived (voice_server/receipts)
            state, told = await tell_receipts(conn, row, state, now, world, greeting=event is None)
        if event is None:
            greeting = machine.greet(state, now, world)
            state, actions, ended = greeting.state, told + list(greeting.actions), False
        else:
            state, actions, ended = await self._run(conn, row, state, event, now, world)
            actions = told + actions
        result = _result(state, actions)
        record = turn_record(event, result, keep) if keep is not None and event is not None else None
        state_json = state.model_dump_json()
        if ended:
            await conn.execute(_STORE, row["id"], state_json, state.language, now)
            await self._close(conn, row, "expired" if _expired(actions) else "ended", state)
            state_json = "null"  # stored, then ended by _close
        await _store_and_commit(conn, row["id"], state_json, state.language, now, record)
        return result

    async def _lock(
        self,
        conn: asyncpg.Connection,
        session_id: str,
        user_id: uuid.UUID,
        *,
        allow_closed: bool = False,
        world: bool = False,
        contacts: bool = False,
    ) -> asyncpg.Record:
        """The session row, locked; with `world`, also the user's facts (and `contacts`) for the turn
        (see `_LOCK_WITH_WORLD`)."""
        if not isinstance(session_id, str) or not session_id or len(session_id) > 200:
            raise SessionClosed("not_found", "no such session")
        if world:
            row = await conn.fetchrow(_LOCK_WITH_WORLD, session_id, user_id, contacts)
        else:
            row = await conn.fetchrow(_LOCK, session_id)
        if row is None:
            raise SessionClosed("not_found", "no such session")
        if row["user_id"] != user_id:
            raise SessionClosed("forbidden", "the session belongs to someone else")
        if not allow_closed and row["status"] != "active":
            code: ClosedCode = "expired" if row["status"] == "expired" else "ended"
            raise SessionClosed(code, f"the session has {code}")
        return cast(asyncpg.Record, row)

    async def _close(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        status: str,
        state: DialogueState | None = None,
    ) -> None:
        if state is None:
            state = _stored_state(row["dialogue_state"])
        state.phase, state.proposal, state.draft, state.candidates = Phase.ENDED, None, None, []
        await conn.execute(
            """UPDATE voice_sessions SET status = $2, ended_at = $3, dialogue_state = $4::text::jsonb
               WHERE id = $1 AND status = 'active'""",
            row["id"],
            status,
            self.now(),
            state.model_dump_json(),
        )
        # (A failure here fails the whole turn: the session does not end with its proposals still held.)
        await self._ledger(conn).cancel_session(
            row["session_id"],
            "session_expired" if status == "expired" else "session_ended",
            user_id=row["wallet_id"] or row["user_id"],
        )

    def _world_of(self, row: asyncpg.Record) -> World:
        """The facts `_LOCK_WITH_WORLD` read with the session row."""
        return World(contacts=index_of(row["contacts"] or ()))

    async def _world(self, conn: asyncpg.Connection, user_id: uuid.UUID, event: UserEvent | None) -> World:
        """The facts about the user, read by statements of their own (after a wait for the session lock)."""
        contacts = index_of(())
        if _needs_contacts(event):
            rows = await conn.fetch(
                """SELECT id::text AS id, name, coalesce(phone_number, '') AS phone_number, nickname
                   FROM contacts WHERE user_id = $1 ORDER BY favorite DESC NULLS LAST, name, id""",
                user_id,
            )
            contacts = index_of([dict(r) for r in rows])
        return World(contacts=contacts)

    async def _run(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        state: DialogueState,
        event: Event,
        now: datetime,
        world: World,
    ) -> tuple[DialogueState, list[Action], bool]:
        """Feed the event, carry out each action the dialogue asks for, feed the answers back."""
        ledger = self._ledger(conn)
        user_id: uuid.UUID = row["user_id"]
        wallet_id: uuid.UUID = row["wallet_id"] or user_id
        business = await self._business(conn, ledger, row)
        done: list[Action] = []
        ended = False
        first = machine.step(state, event, now, world)
        state = first.state
        pending: deque[Step] = deque([first])
        while pending:
            current = pending.popleft()
            for action in current.actions:
                done.append(action)
                answer: Event | None = None
                if isinstance(action, Propose) and business is not None:
                    answer = await self._propose_business(business, row["session_id"], action)
                elif isinstance(action, Confirm) and business is not None:
                    answer = await self._confirm_business(business, action)
                elif isinstance(action, Propose):
                    answer = await self._propose(conn, ledger, user_id, row["session_id"], action)
                elif isinstance(action, Confirm):
                    answer = await self._confirm(conn, ledger, user_id, action)
                elif isinstance(action, CheckPin):
                    # In this turn's transaction: a right PIN's evidence is what lets the Confirm that
                    # follows post a payment that needs the PIN (sql/0019).
                    check = await check_user_pin(conn, user_id, action.digits[:32], now=now)
                    answer = PinResult(check.outcome, check.attempts_left)
                elif isinstance(action, FetchBalance):
                    balance = await ledger.balance(wallet_id)
                    answer = BalanceTold(balance.wallet, balance.available)
                elif isinstance(action, FetchHistory):
                    answer = await self._history(conn, wallet_id, action.limit, business)
                elif isinstance(action, FetchSpending):  # read as the user, on a connection of its own
                    answer = await spending_told(self.pool, user_id, action)
                elif isinstance(action, Cancel):
                    await self._cancel(conn, ledger, wallet_id, action)
                elif isinstance(action, EndSession):
                    ended = True
                if answer is not None:
                    nxt = machine.step(state, answer, now, world)
                    state = nxt.state
                    pending.append(nxt)
        return state, done, ended

    async def _propose(
        self, conn: asyncpg.Connection, ledger: Ledger, user_id: uuid.UUID, session_id: str, action: Propose
    ) -> Event:
        try:
            request = ProposalRequest.build(
                type=action.type,
                amount=action.amount,
                **action.fields,
                confidence_score=action.confidence,
                voice_command_text=action.text or None,
                session_id=session_id,
            )
            if action.revise is not None:
                proposal = await ledger.revise(action.revise, user_id, request)
            else:
                proposal = await ledger.propose(user_id, request)
        except LedgerError as exc:
            balance = await ledger.balance(user_id)
            code = _SPOKEN_CODES.get(exc.code, exc.code)
            return ProposalRefused(code, exc.message, balance.available, balance.wallet)
        return ProposalMade(_view(proposal))

    async def _confirm(
        self, conn: asyncpg.Connection, ledger: Ledger, user_id: uuid.UUID, action: Confirm
    ) -> Event:
        try:
            result = await ledger.confirm(
                action.proposal_id, user_id, action.version, voice_verified=action.voice_verified
            )
        except LedgerError as exc:
            balance = await ledger.balance(user_id)
            code = _SPOKEN_CODES.get(exc.code, exc.code)
            return ConfirmRefused(code, exc.message, balance.available, balance.wallet)
        data = result.model_dump()
        return Committed(
            transaction_id=result.transaction_id,
            version=result.version,
            type=result.type.value,
            amount=result.amount,
            fee=result.fee,
            status=result.status.value,
            voice_verified=result.voice_verified,
            wallet_balance=result.wallet_balance,
            available=result.available,
            details=_deposit_details(data),
        )

    async def _business(
        self, conn: asyncpg.Connection, ledger: Ledger, row: asyncpg.Record
    ) -> BusinessLedger | None:
        """The business wallet the session speaks for, as the member sees it now; a member removed since the
        session began gets nothing (their session was ended with the removal: this is the turn that raced
        it, and the ledger refuses its payments anyway)."""
        if row["wallet_id"] is None:
            return None
        try:
            wallet = await wallet_for(conn, row["user_id"], row["wallet_id"])
        except LedgerError:
            raise SessionClosed("ended", "you are no longer a member of this business") from None
        return BusinessLedger(ledger, wallet, row["user_id"])

    async def _propose_business(self, business: BusinessLedger, session_id: str, action: Propose) -> Event:
        try:
            request = ProposalRequest.build(
                type=action.type,
                amount=action.amount,
                **action.fields,
                confidence_score=action.confidence,
                voice_command_text=action.text or None,
                session_id=session_id,
            )
            if action.revise is not None:
                proposal = await business.revise(action.revise, request)
            else:
                proposal = await business.propose(request)
        except LedgerError as exc:
            balance = await business.ledger.balance(business.wallet.id)
            code = _SPOKEN_CODES.get(exc.code, exc.code)
            return ProposalRefused(code, exc.message, balance.available, balance.wallet)
        view = dataclasses.replace(
            _view(proposal), wallet_name=business.wallet.name, needs_approval=proposal.needs_approval
        )
        return ProposalMade(view)

    async def _confirm_business(self, business: BusinessLedger, action: Confirm) -> Event:
        try:
            data = await business.confirm(
                action.proposal_id, action.version, voice_verified=action.voice_verified
            )
        except LedgerError as exc:
            balance = await business.ledger.balance(business.wallet.id)
            code = _SPOKEN_CODES.get(exc.code, exc.code)
            return ConfirmRefused(code, exc.message, balance.available, balance.wallet)
        awaiting = data.get("outcome") == "awaiting_approval"
        return Committed(
            transaction_id=uuid.UUID(str(data["transaction_id"])),
            version=int(data["version"]),
            type=str(data["type"]),
            amount=Decimal(str(data["amount"])),
            fee=Decimal(str(data["fee"])),
            status="awaiting_approval" if awaiting else str(data["status"]),
            voice_verified=bool(data.get("voice_verified")),
            wallet_balance=Decimal(str(data["wallet_balance"])),
            available=Decimal(str(data["available"])),
            details={"business_name": business.wallet.name},
        )

    async def _cancel(
        self, conn: asyncpg.Connection, ledger: Ledger, user_id: uuid.UUID, action: Cancel
    ) -> None:
        try:
            await ledger.cancel(action.proposal_id, user_id, action.reason)
        except LedgerError as exc:  # already cancelled by the sweeper, or confirmed: nothing to void
            log.info("cancel of %s: %s", action.proposal_id, exc.code)

    async def _history(
        self, conn: asyncpg.Connection, user_id: uuid.UUID, limit: int, business: BusinessLedger | None = None
    ) -> HistoryTold:
        # (A business's spender hears only their own payments from it, as row level security shows them.)
        only = business.member if business is not None and business.wallet.role == "spender" else None
        rows = await conn.fetch(
            """SELECT t.type, t.amount, t.status, t.phone, t.till, t.paybill, t.bank_code, t.created_at,
                      (SELECT c.name FROM contacts c WHERE c.user_id = t.user_id AND c.phone_number = t.phone
                       ORDER BY c.name LIMIT 1) AS contact
               FROM transactions t
               WHERE t.user_id = $1 AND t.status <> 'pending' AND ($3::uuid IS NULL OR t.made_by = $3)
               ORDER BY t.created_at DESC, t.id LIMIT $2""",
            user_id,
            max(1, min(limit, 10)),
            only,
        )
        items = tuple(
            HistoryItem(
                type=r["type"],
                amount=r["amount"],
                status=r["status"],
                recipient=r["contact"] or spoken_phone(r["phone"] or "") or r["till"] or r["paybill"] or "",
                when_epoch=r["created_at"].timestamp() if r["created_at"] else None,
            )
            for r in rows
        )
        return HistoryTold(items)


# Ledger refusal codes as transcripts.md names them (a payout below M-Pesa's minimum is an invalid amount).
_SPOKEN_CODES = {"below_minimum": "invalid_amount"}


def _needs_contacts(event: UserEvent | None) -> bool:
    """Only what the person says (or the agent proposes) can name a contact."""
    return isinstance(event, Utterance | ToolPropose)


def _stored_state(data: str | None) -> DialogueState:
    """The stored dialogue (its JSON text); one that no longer reads (an older shape) starts afresh rather
    than failing the turn: a fresh dialogue has no proposal, so nothing can be confirmed by mistake."""
    try:
        return DialogueState.model_validate_json(data if data and data != "null" else "{}")
    except ValidationError:
        log.warning("unreadable dialogue state; starting the dialogue afresh")
        return DialogueState()


def _expired(actions: list[Action]) -> bool:
    return any(isinstance(a, EndSession) and a.reason == "expired" for a in actions)


_PAYBILL_KEYS = ("paybill", "deposit_paybill", "business_paybill", "business_shortcode")
_REFERENCE_KEYS = ("reference", "account_reference", "deposit_reference", "bill_ref_number")


def _deposit_details(data: dict[str, Any]) -> dict[str, str]:
    """bank_to_mpesa: the paybill and account reference the person pays from the bank app, when the ledger's
    confirmation carries them (a C2B deposit); otherwise nothing and the receipt stays neutral."""
    out: dict[str, str] = {}
    for key in _PAYBILL_KEYS:
        if data.get(key):
            out["paybill"] = str(data[key])
            break
    for key in _REFERENCE_KEYS:
        if data.get(key):
            out["reference"] = str(data[key])
            break
    return out


def _view(p: Proposal) -> ProposalView:
    return ProposalView(
        proposal_id=p.id,
        version=p.version,
        type=p.type.value,
        amount=p.amount,
        fee=p.fee,
        **recipient_of(p),
        expires_at_epoch=p.expires_at.timestamp() if p.expires_at else None,
        needs_pin=p.needs_pin,
    )


def _result(state: DialogueState, actions: list[Action]) -> TurnResult:
    notes = [a for a in actions if isinstance(a, Note)]
    outcome = notes[-1].outcome if notes else "ignored"

    def last(attr: str) -> Any:
        for note in reversed(notes):
            value = getattr(note, attr)
            if value is not None:
                return value
        return None

    balance: Decimal | None = last("balance")
    proposal: dict[str, object] | None = None
    p = state.proposal
    if p is not None:
        proposal = {
            "proposal_id": str(p.proposal_id),
            "version": p.version,
            "type": p.type,
            "amount": plain_amount(p.amount),
            **recipient_of(p, filled=True),
            "fee": plain_amount(p.fee),
            "total": plain_amount(p.total),
            "needs_pin": p.needs_pin,
            "status": "pending",
        }
        if p.recipient_name:
            proposal["recipient_name"] = p.recipient_name
    return TurnResult(
        say=[Say(a.text, a.language) for a in actions if isinstance(a, Speak) and a.text],
        client_events=[ClientEvent(a.tool_name, a.parameters) for a in actions if isinstance(a, Show)],
        outcome=outcome,
        proposal=proposal,
        asked=notes[-1].asked if notes else None,
        rejected=last("rejected"),
        committed=last("committed"),
        balance=plain_amount(balance) if balance is not None else None,
        language=state.language,
        cancelled=any(n.cancelled for n in notes),
        pin_aloud=any(isinstance(a, Speak) and a.key == "pin.spoken" for a in actions),
    )
