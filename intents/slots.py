"""Which number is which: the amount, a phone, a till, a paybill, an agent, a store or an account, from the
marker said before it ("till", "kwa", "account") or the currency word after it ("500 bob"); and the typed
intent a finished set of slots makes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter, ValidationError

from intents.items import SKIP_ROLES, Item
from intents.models import Intent
from intents.number_items import NumberReader
from intents.numbers import Chunk, with_slip
from intents.phones import looks_like_phone
from intents.utterance import WORDS


@dataclass
class Slots:
    amounts: list[tuple[Chunk, bool, bool]] = field(default_factory=list)  # chunk, marked, negative
    phones: list[Chunk] = field(default_factory=list)
    bad_recipients: list[Chunk] = field(default_factory=list)
    till: list[Chunk] = field(default_factory=list)
    paybill: list[Chunk] = field(default_factory=list)
    agent: list[Chunk] = field(default_factory=list)
    store: list[Chunk] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    banks: list[str] = field(default_factory=list)
    billers: list[int] = field(default_factory=list)


class SlotReader(NumberReader):
    """Items -> slots."""

    def slots(self, items: list[Item]) -> Slots:
        s = Slots()
        for p, it in enumerate(items):
            if it.kind == "bank":
                s.banks.append(it.text)
            elif it.kind == "biller":
                s.billers.append(int(it.text))
            elif it.kind == "account":
                s.accounts.append(it.text)
            if it.kind != "chunk" or it.chunk is None:
                continue
            ch = it.chunk
            before = items[p - 1] if p > 0 else None
            negative = before is not None and before.role == "minus"
            if before is not None and before.kind in ("role", "word") and before.text in WORDS.homophones:
                ch = with_slip(ch, WORDS.homophones[before.text])
            q = p - 1
            while q >= 0 and items[q].kind == "role" and items[q].role in SKIP_ROLES:
                q -= 1
            marker = (
                items[q].role
                if q >= 0 and items[q].kind == "role"
                else ("bank" if q >= 0 and items[q].kind == "bank" else "")
            )
            after = items[p + 1] if p + 1 < len(items) else None
            # "500 bob": a currency word after the number, unless it introduces the next number instead.
            after2 = items[p + 2] if p + 2 < len(items) else None
            money_after = (
                after is not None
                and after.role == "currency"
                and ch.value is not None
                and not (after2 is not None and after2.kind == "chunk")
            )
            digits = ch.digits or int_digits(ch.value)
            if marker in ("till", "paybill", "agent") and not ch.digits and ch.value is not None:
                # "lipa till elfu moja", "till 12k": a business number is a digit string, never an amount
                s.amounts.append((ch, False, negative))
            elif marker in ("till", "paybill", "agent", "store"):
                getattr(s, marker).append(replace(ch, digits=digits))
            elif marker == "pochi" and (
                looks_like_phone(ch.digits, ch.plus, recipient=True)
                or (not ch.spoken and len(ch.digits) >= 5)
            ):
                s.phones.append(ch)
            elif marker in ("currency", "amount", "minus") or money_after:
                s.amounts.append((ch, True, negative))
            elif marker == "bank" and ch.digits and len(ch.digits) >= 6:
                s.accounts.append(ch.digits)  # "akaunti yangu ya NCBA namba 0865...": an account, not a phone
            elif ch.digits and looks_like_phone(ch.digits, ch.plus, recipient=marker == "to"):
                s.phones.append(ch)
            elif (
                marker == "to"
                and ch.digits
                and not ch.spoken
                and len(ch.digits) >= 5
                and ch.slip_value is None
            ):
                s.bad_recipients.append(ch)
            else:
                s.amounts.append((ch, marker == "for", negative))
        return s


def int_digits(value: Decimal | None) -> str:
    if value is None or value < 0 or value != value.to_integral_value():
        return ""
    try:
        return str(int(value))
    except (ValueError, OverflowError):
        return ""


def name_spans(items: list[Item]) -> list[list[str]]:
    """Runs of words the vocabulary does not know: candidate names (or noise)."""
    spans: list[list[str]] = []
    cur: list[str] = []
    for it in items:
        if it.kind == "word":
            cur.append(it.text)
        else:
            if cur:
                spans.append(cur)
            cur = []
    if cur:
        spans.append(cur)
    return spans


def typed_intent(txn: str, out: dict[str, Any]) -> Intent | None:
    """The typed intent, or None when a field fails its model's checks (e.g. a 4-digit till)."""
    data = {k: v for k, v in out.items() if k in _FIELDS[txn] and v not in ("", None)}
    data["type"] = txn
    try:
        intent: Intent = _ADAPTER.validate_python(data)
    except ValidationError:
        return None
    return intent


_FIELDS: dict[str, tuple[str, ...]] = {
    "send_phone": ("amount", "phone", "contact_id"),
    "buy_goods_pochi": ("amount", "phone", "contact_id"),
    "buy_goods_till": ("amount", "till"),
    "paybill": ("amount", "paybill", "account"),
    "withdraw": ("amount", "agent", "store"),
    "bank_to_mpesa": ("amount", "bank_code"),
    "mpesa_to_bank": ("amount", "bank_code", "account"),
    "spending_summary": ("period", "contact_id", "phone", "till", "paybill"),
    "check_balance": (),
    "transaction_history": (),
}
_ADAPTER: TypeAdapter[Intent] = TypeAdapter(Intent)
