"""C2B: money people push into the business paybill (how `bank_to_mpesa` really happens).

The product cannot pull money from a bank. Confirming `bank_to_mpesa` gives the person the paybill and a short
account reference (sql/0008); they pay from their bank app; Daraja posts a C2B validation (when Safaricom
has enabled it) and a confirmation to the URLs registered with `registerurl`. The confirmation is the
external fact: it is recorded and credited once per `TransID`, for the amount that arrived. Daraja does not
resend a missed confirmation, and an STK push whose answer was lost cannot be STK-queried (no
CheckoutRequestID), so both are reconciled with Pull Transactions, matched on the account reference.

Daraja's documented quirks are respected: `TransAmount` is a string, `TransactionType` may be anything (never
filtered on), `BillRefNumber` is typed by a person (case and spaces normalised), `MSISDN` is masked (never
matched on).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from decimal import Decimal
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ledger.daraja.client import DarajaClient, DarajaError
from ledger.daraja.credentials import NAIROBI
from ledger.daraja.models import as_decimal, callback_amount
from ledger.models import C2bOutcome, to_amount
from ledger.service import Ledger

log = logging.getLogger(__name__)

REGISTER_PATHS = {"v1": "/mpesa/c2b/v1/registerurl", "v2": "/mpesa/c2b/v2/registerurl"}
SIMULATE_PATH = "/mpesa/c2b/v1/simulate"
PULL_PATH = "/pulltransactions/v1/query"
PULL_REGISTER_PATH = "/pulltransactions/v1/register"
# Production registers URLs once; a repeat is refused with this code, whose message says "already
# registered" (the same code with another message is a plain internal error, retried).
ALREADY_REGISTERED = "500.003.1001"
PULL_WINDOW = dt.timedelta(hours=48)  # what Pull Transactions can still see
# The most one deposit can credit (a transaction's amount, and `too_large` in ledger_credit_c2b): validation
# bounces more back to the payer rather than take money only a person could refund.
MAX_DEPOSIT = Decimal("999999")

ACCEPTED: dict[str, str] = {"ResultCode": "0", "ResultDesc": "Accepted"}
CONFIRMED: dict[str, Any] = {"ResultCode": 0, "ResultDesc": "Success"}

RejectCode = Literal["C2B00011", "C2B00012", "C2B00013", "C2B00014", "C2B00015", "C2B00016"]


def rejected(code: RejectCode) -> dict[str, str]:
    return {"ResultCode": code, "ResultDesc": "Rejected"}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


class C2bCallback(BaseModel):
    """A C2B validation or confirmation body (both have the same fields)."""

    model_config = ConfigDict(extra="allow")

    TransactionType: str = ""
    TransID: str = Field(min_length=1, max_length=40)
    TransTime: str = ""
    TransAmount: str
    BusinessShortCode: str = ""
    BillRefNumber: str = ""
    InvoiceNumber: str = ""
    OrgAccountBalance: str = ""
    ThirdPartyTransID: str = ""
    MSISDN: str = ""
    FirstName: str = ""

    @field_validator(
        "TransactionType",
        "TransID",
        "TransTime",
        "TransAmount",
        "BusinessShortCode",
        "BillRefNumber",
        "InvoiceNumber",
        "OrgAccountBalance",
        "ThirdPartyTransID",
        "MSISDN",
        "FirstName",
        mode="before",
    )
    @classmethod
    def _as_text(cls, value: Any) -> str:
        if isinstance(value, (dict, list, bool)):
            raise ValueError("expected a string or a number")
        return _text(value)

    def amount(self) -> Decimal | None:
        """What arrived, as money (positive, at most two places), or None when unreadable."""
        return callback_amount(self.TransAmount)


def parse_callback(body: Any) -> C2bCallback | None:
    try:
        return C2bCallback.model_validate(body)
    except ValidationError:
        return None


async def validation_answer(
    pool: asyncpg.Pool, body: Any, paybill: str, *, db_seconds: float = 3.0
) -> dict[str, str]:
    """Accept a deposit only when it would be credited: our paybill, a readable amount, a reference that an
    expected deposit awaits. A rejection sends the money back to the payer, so nothing is lost; the answer
    comes well within Daraja's ~8 s (a slow database answers C2B00016)."""
    cb = parse_callback(body)
    if cb is None:
        return rejected("C2B00016")
    if cb.BusinessShortCode and cb.BusinessShortCode != paybill:
        return rejected("C2B00015")
    amount = cb.amount()
    if amount is None or amount > MAX_DEPOSIT:
        return rejected("C2B00013")
    try:
        ok = await pool.fetchval("SELECT ledger_c2b_acceptable($1)", cb.BillRefNumber, timeout=db_seconds)
    except (asyncpg.PostgresError, OSError, TimeoutError):
        log.exception("C2B validation could not reach the database: rejected (the payer keeps the money)")
        return rejected("C2B00016")
    return ACCEPTED if ok else rejected("C2B00012")


async def apply_confirmation(
    ledger: Ledger, body: Any
) -> tuple[C2bOutcome | Literal["malformed"], str | None]:
    """A recorded confirmation applied: (outcome, TransID). Deposits that need a person are logged."""
    cb = parse_callback(body)
    amount = cb.amount() if cb is not None else None
    if cb is None or amount is None:
        log.error("C2B confirmation unreadable (kept in mpesa_callbacks for a person): %.300s", body)
        return "malformed", cb.TransID if cb is not None else None
    outcome = await ledger.credit_c2b(
        trans_id=cb.TransID,
        bill_ref=cb.BillRefNumber,
        amount=amount,
        short_code=cb.BusinessShortCode,
        trans_time=cb.TransTime,
        msisdn=cb.MSISDN,
        first_name=cb.FirstName,
        transaction_type=cb.TransactionType,
    )
    _log_outcome(outcome, cb.TransID, cb.BillRefNumber, amount)
    return outcome, cb.TransID


def _log_outcome(outcome: str, trans_id: str, reference: str, amount: Decimal) -> None:
    if outcome in ("credited", "already_recorded"):
        log.info("C2B deposit %s (%s, KES %s): %s", trans_id, reference, amount, outcome)
    else:
        log.error(
            "C2B deposit %s (reference %r, KES %s) NEEDS A PERSON: %s (see c2b_deposits)",
            trans_id,
            reference,
            amount,
            outcome,
        )


# --- Daraja calls ------------------------------------------------------------------------------------------


class RegisterUrlRequest(BaseModel):
    ShortCode: str
    ResponseType: Literal["Completed", "Cancelled"]
    ConfirmationURL: str
    ValidationURL: str


class RegisterUrlResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    ResponseDescription: str = ""
    ResponseCode: str = "0"

    @field_validator("ResponseCode", mode="before")
    @classmethod
    def _code(cls, value: Any) -> str:
        return _text(value)


async def register_urls(
    client: DarajaClient,
    *,
    shortcode: str,
    confirmation_url: str,
    validation_url: str,
    response_type: Literal["Completed", "Cancelled"] = "Completed",
    version: Literal["v1", "v2"] = "v1",
) -> Literal["registered", "already_registered"]:
    """`registerurl`: one-time in production, where a repeat answers `500.003.1001` (taken as done)."""
    request = RegisterUrlRequest(
        ShortCode=shortcode,
        ResponseType=response_type,
        ConfirmationURL=confirmation_url,
        ValidationURL=validation_url,
    )
    try:
        answer = await client._post(REGISTER_PATHS[version], request, RegisterUrlResponse)
    except DarajaError as exc:
        # 500.003.1001 is also a plain internal error: only its message says "already registered".
        if "already registered" in str(exc).lower():
            return "already_registered"
        raise
    if answer.ResponseCode not in ("0", "00000000", ""):
        if "already" in answer.ResponseDescription.lower():
            return "already_registered"
        raise DarajaError(f"registerurl: {answer.ResponseCode} {answer.ResponseDescription}")
    return "registered"


class PullRegisterRequest(BaseModel):
    ShortCode: str
    RequestType: Literal["Pull"] = "Pull"
    NominatedNumber: str
    CallBackURL: str


class PullRegisterResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    ResponseRefID: str = ""
    ResponseStatus: str = ""
    ResponseDescription: str = ""

    @field_validator("ResponseStatus", mode="before")
    @classmethod
    def _code(cls, value: Any) -> str:
        return _text(value)


async def register_pull(
    client: DarajaClient, *, shortcode: str, nominated_number: str, callback_url: str
) -> Literal["registered", "already_registered"]:
    """`pulltransactions/v1/register`, once per shortcode: without it Pull Transactions cannot be queried
    (a lost STK push or C2B confirmation would never be found). "Already registered" counts as done."""
    request = PullRegisterRequest(
        ShortCode=shortcode, NominatedNumber=nominated_number, CallBackURL=callback_url
    )
    try:
        answer = await client._post(PULL_REGISTER_PATH, request, PullRegisterResponse)
    except DarajaError as exc:
        if "already registered" in str(exc).lower():
            return "already_registered"
        raise
    if answer.ResponseStatus == "1000":
        return "registered"
    if answer.ResponseStatus == "1001" or "already" in answer.ResponseDescription.lower():
        return "already_registered"
    raise DarajaError(f"pull register: {answer.ResponseStatus} {answer.ResponseDescription}")


class PullRequest(BaseModel):
    ShortCode: str
    StartDate: str
    EndDate: str
    OffSetValue: str = "0"


class PulledTransaction(BaseModel):
    model_config = ConfigDict(extra="allow")

    transactionId: str
    trxDate: str = ""
    msisdn: str = ""
    transactiontype: str = ""
    billreference: str = ""
    amount: str

    @field_validator(
        "transactionId", "trxDate", "msisdn", "transactiontype", "billreference", "amount", mode="before"
    )
    @classmethod
    def _as_text(cls, value: Any) -> str:
        return _text(value)


class PullResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    ResponseCode: str = ""
    ResponseMessage: str = ""
    Response: list[list[PulledTransaction]] | list[PulledTransaction] = []

    @field_validator("ResponseCode", mode="before")
    @classmethod
    def _code(cls, value: Any) -> str:
        return _text(value)

    def lines(self) -> list[PulledTransaction]:
        out: list[PulledTransaction] = []
        for item in self.Response:
            if isinstance(item, list):
                out.extend(item)
            else:
                out.append(item)
        return out


def _pull_time(moment: dt.datetime) -> str:
    return f"{moment.astimezone(NAIROBI):%Y-%m-%d %H:%M:%S}"


async def pull_transactions(
    client: DarajaClient, shortcode: str, start: dt.datetime, end: dt.datetime
) -> list[PulledTransaction]:
    """Every payment into `shortcode` between `start` and `end` (Daraja keeps 48 hours), all pages."""
    lines: list[PulledTransaction] = []
    for page in range(100):
        request = PullRequest(
            ShortCode=shortcode,
            StartDate=_pull_time(start),
            EndDate=_pull_time(end),
            OffSetValue=str(len(lines)),
        )
        answer = await client._post(PULL_PATH, request, PullResponse)
        got = answer.lines()
        lines.extend(got)
        if not got or page == 99:
            break
    return lines


class DepositReconciler:
    """Finds, by Pull Transactions, the payments whose callbacks never came: STK pushes whose answer was lost
    (no CheckoutRequestID to query) and C2B deposits whose confirmation was missed. Each is credited by the
    ledger's once-only functions, so asking twice or racing a late callback credits nothing twice."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        ledger: Ledger,
        client: DarajaClient,
        *,
        stk_shortcode: str,
        c2b_shortcode: str,
        interval: float = 60.0,
        lost_push_grace: float = 120.0,
        missed_confirmation_after: float = 300.0,
        till: bool = False,
    ) -> None:
        self.pool = pool
        self.ledger = ledger
        self.client = client
        self.stk_shortcode = stk_shortcode
        self.c2b_shortcode = c2b_shortcode
        self.interval = interval
        self.lost_push_grace = lost_push_grace
        self.missed_confirmation_after = missed_confirmation_after
        # STK pushes pay a till: Pull lists till payments without a bill reference, so a lost push is matched
        # by amount, phone and time instead (and left for a person when that is not one payment).
        self.till = till
        self._next_at = 0.0

    async def due(self) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        topups = await self.pool.fetch(
            """SELECT id, amount, account_reference, created_at, phone_number FROM mpesa_transactions
               WHERE status = 'pending' AND checkout_request_id IS NULL AND account_reference IS NOT NULL
                 AND push_unknown_since <= now() - make_interval(secs => $1)
                 AND created_at >= now() - interval '48 hours'""",
            self.lost_push_grace,
        )
        # Expired ones too, while Pull Transactions still sees their whole life and nothing arrived for them:
        # a deposit paid in time whose confirmation was missed (Daraja does not resend it) must not vanish
        # because the 24 hours ran out before the next pull; it is recorded for a person (reference_expired).
        deposits = await self.pool.fetch(
            """SELECT e.transaction_id, e.account_reference, e.created_at FROM c2b_expected_deposits e
               WHERE (e.status = 'awaiting' AND e.created_at <= now() - make_interval(secs => $1))
                  OR (e.status = 'expired' AND e.created_at >= now() - interval '48 hours'
                      AND NOT EXISTS (SELECT 1 FROM c2b_deposits d
                                      WHERE d.account_reference = e.account_reference))""",
            self.missed_confirmation_after,
        )
        return list(topups), list(deposits)

    async def run_once(self, *, now: float, force: bool = False) -> int:
        """One reconciliation round when due (every `interval` seconds); returns what it credited."""
        if not force and now < self._next_at:
            return 0
        self._next_at = now + self.interval
        topups, deposits = await self.due()
        if not topups and not deposits:
            return 0
        end = dt.datetime.now(dt.UTC)
        credited = 0
        if topups:
            start = max(min(r["created_at"] for r in topups) - dt.timedelta(minutes=1), end - PULL_WINDOW)
            by_ref = {r["account_reference"]: r for r in topups}
            credited += await self._match(self.stk_shortcode, start, end, by_ref, {})
        if deposits:
            start = max(min(r["created_at"] for r in deposits) - dt.timedelta(minutes=1), end - PULL_WINDOW)
            refs = {r["account_reference"]: r for r in deposits}
            credited += await self._match(self.c2b_shortcode, start, end, {}, refs)
        return credited

    async def _match(
        self,
        shortcode: str,
        start: dt.datetime,
        end: dt.datetime,
        topups: dict[str, asyncpg.Record],
        deposits: dict[str, asyncpg.Record],
    ) -> int:
        try:
            lines = await pull_transactions(self.client, shortcode, start, end)
        except DarajaError as exc:
            log.warning("Pull Transactions failed (will ask again): %s", exc)
            return 0
        credited = 0
        if self.till and topups:
            credited += await self._match_till(lines, topups)
        for line in lines:
            reference = "".join(ch for ch in line.billreference if ch.isalnum()).upper()
            amount = as_decimal(line.amount)
            if amount is None or amount <= 0:
                continue
            topup = topups.get(reference)
            if topup is not None:
                if amount != topup["amount"]:
                    log.error("Pull Transactions: %s for top-up %s is KES %s, not %s: needs a person",
                              line.transactionId, topup["id"], amount, topup["amount"])  # fmt: skip
                    continue
                outcome = await self.ledger.credit_topup(
                    "", success=True, receipt=line.transactionId, topup_id=topup["id"], verified=True
                )
                log.info(
                    "top-up %s found by Pull Transactions (%s): %s", topup["id"], line.transactionId, outcome
                )
                credited += outcome == "credited"
            elif reference in deposits:
                c2b = await self.ledger.credit_c2b(
                    trans_id=line.transactionId,
                    bill_ref=line.billreference,
                    amount=to_amount(amount),
                    short_code=shortcode,
                    msisdn=line.msisdn,
                    transaction_type=line.transactiontype,
                    source="pull",
                )
                _log_outcome(c2b, line.transactionId, line.billreference, amount)
                credited += c2b == "credited"
        return credited

    async def _match_till(self, lines: list[PulledTransaction], topups: dict[str, asyncpg.Record]) -> int:
        """Lost pushes to a till, by amount, phone (as Pull shows it: masked or hashed) and time (from the
        push to `TILL_MATCH_WINDOW` after it). Only a pairing that is one line to one top-up both ways is
        credited; anything else is logged for a person, never guessed."""
        candidates: dict[str, list[asyncpg.Record]] = {}
        for line in lines:
            if line.billreference.strip():
                continue
            amount, at = as_decimal(line.amount), _pull_moment(line.trxDate)
            if amount is None or at is None:
                continue
            candidates[line.transactionId] = [
                t
                for t in topups.values()
                if t["amount"] == amount
                and t["created_at"] - dt.timedelta(minutes=1) <= at <= t["created_at"] + TILL_MATCH_WINDOW
                and phone_matches(line.msisdn, str(t["phone_number"] or ""))
            ]
        by_topup: dict[uuid.UUID, list[str]] = {}
        for trans_id, matched in candidates.items():
            for t in matched:
                by_topup.setdefault(t["id"], []).append(trans_id)
        credited = 0
        for trans_id, matched in candidates.items():
            if not matched:
                continue
            if len(matched) > 1 or len(by_topup[matched[0]["id"]]) > 1:
                log.error(
                    "Pull Transactions: till payment %s fits %d lost top-ups, or they fit other payments: "
                    "NEEDS A PERSON",
                    trans_id,
                    len(matched),
                )
                continue
            topup = matched[0]
            outcome = await self.ledger.credit_topup(
                "", success=True, receipt=trans_id, topup_id=topup["id"], verified=True
            )
            log.info("top-up %s (till) found by Pull Transactions (%s): %s", topup["id"], trans_id, outcome)
            credited += outcome == "credited"
        return credited


TILL_MATCH_WINDOW = dt.timedelta(minutes=10)  # a push is paid within its prompt's life, well inside this


def _pull_moment(text: str) -> dt.datetime | None:
    """Pull's `trxDate` (`2020-08-05T10:13:00Z`, or without the zone: Nairobi time)."""
    value = text.strip()
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=NAIROBI)


def phone_matches(shown: str, phone: str) -> bool:
    """Whether Pull's `msisdn` can be `phone` (2547XXXXXXXX): equal, the SHA-256 of it, or masked
    (`254712****78`, `2547 ***** 126`) with every digit shown in place at the start and the end."""
    shown, digits = shown.replace(" ", ""), "".join(ch for ch in phone if ch.isdigit())
    if not shown or not digits:
        return False
    if shown == digits or shown.lower() == hashlib.sha256(digits.encode()).hexdigest():
        return True
    if "*" not in shown:
        return False
    head, _, tail = shown.partition("*")
    tail = tail.lstrip("*")
    return (
        head.isdigit()
        and digits.startswith(head)
        and (not tail or (tail.isdigit() and digits.endswith(tail)))
    )


def new_topup_reference(topup_id: uuid.UUID) -> str:
    """The STK AccountReference of a top-up (at most 12 characters, unique): 'TU' + 10 hex of its id."""
    return "TU" + topup_id.hex[:10].upper()
