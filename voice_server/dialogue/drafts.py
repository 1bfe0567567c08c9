"""Building a request (a `Draft`) from what was said or what the agent's propose tool sent, and revising one
from a proposal: the contacts matched, the numbers checked, the slots each type still needs. Pure: the
contacts come in the turn's `World`."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from intents import parse
from intents.banks import bank_name
from intents.models import TXN_TYPES
from intents.phones import normalise_phone
from ledger.limits import MAX_TRANSACTION_KES
from voice_server.dialogue import understanding as u
from voice_server.dialogue.state import Candidate, Draft, LiveProposal, World, recipient_of

# The slots each type needs, in the order they are asked.
REQUIRED: dict[str, tuple[str, ...]] = {
    "send_phone": ("amount", "recipient"),
    "buy_goods_pochi": ("amount", "recipient"),
    "buy_goods_till": ("amount", "till"),
    "paybill": ("amount", "paybill", "account"),
    "withdraw": ("amount", "agent", "store"),
    "bank_to_mpesa": ("amount", "bank"),
    "mpesa_to_bank": ("amount", "bank", "account"),
}


SLOT_FIELD = {
    "recipient": "phone",
    "till": "till",
    "paybill": "paybill",
    "account": "account",
    "agent": "agent",
    "store": "store",
    "bank": "bank_code",
}


PARSER_ERRORS = {
    "amount_not_positive": "amount_not_positive",
    "amount_above_limit": "amount_above_limit",
    "invalid_phone": "invalid_phone",
    "invalid_number": "invalid_number",
}


def missing_slot(draft: Draft) -> str | None:
    for slot in REQUIRED.get(draft.type, ("amount",)):
        if slot == "amount":
            if draft.amount is None:
                return slot
        elif not getattr(draft, SLOT_FIELD[slot]):
            return slot
    return None


def draft_of(p: LiveProposal) -> Draft:
    return Draft(
        type=p.type,
        amount=p.amount,
        **recipient_of(p),
        recipient_name=p.recipient_name,
    )


def changes(heard: u.Heard, world: World) -> dict[str, object]:
    update: dict[str, object] = {}
    if heard.amount is not None:
        update["amount"] = heard.amount
    for k, v in heard.fields:
        update[k] = v
    if "phone" in update:
        update["recipient_name"] = contact_name(heard.contact_id, world) or contact_name_by_phone(
            str(update["phone"]), world
        )
    return update


def candidates_of(ids: tuple[str, ...] | list[str], world: World) -> list[Candidate]:
    out: list[Candidate] = []
    if len(ids) < 2:
        return out
    by_id = {c.id: c for c in world.contacts.contacts}
    for cid in ids:
        c = by_id.get(cid)
        if c is not None:
            phone = normalise_phone(c.phone_number) or c.phone_number
            out.append(Candidate(id=c.id, name=c.name, phone=phone))
    return out


def contact_name(contact_id: str | None, world: World) -> str:
    if contact_id is None:
        return ""
    for c in world.contacts.contacts:
        if c.id == contact_id:
            return c.name
    return ""


def contact_name_by_phone(phone: str, world: World) -> str:
    index = world.contacts.by_phone.get(phone)
    return world.contacts.contacts[index].name if index is not None else ""


def draft_from_speech(
    text: str, world: World, asr_confidence: float | None
) -> tuple[Draft | None, list[Candidate], tuple[str, ...]]:
    result = parse(text, world.contacts, asr_confidence=asr_confidence)
    if result.type not in TXN_TYPES or result.type is None:
        return None, [], ()
    draft = Draft(
        type=result.type,
        amount=result.amount,
        **recipient_of(result),
        recipient_name=contact_name(result.contact_id, world)
        or (contact_name_by_phone(result.phone, world) if result.phone else ""),
        text=text[:2000],
        confidence=result.confidence,
    )
    errors = tuple(PARSER_ERRORS[e] for e in result.errors if e in PARSER_ERRORS)
    return draft, candidates_of(result.candidates, world), errors


def draft_from_tool(
    fields: Mapping[str, object], world: World
) -> tuple[Draft | None, list[Candidate], tuple[str, ...]]:
    """The propose tool's fields, validated and matched like speech (a name goes through the contacts)."""
    type_ = str(fields.get("type") or "")
    if type_ not in TXN_TYPES:
        return None, [], ()
    errors: list[str] = []
    amount: Decimal | None = None
    raw = fields.get("amount")
    if raw is not None and not isinstance(raw, bool):
        try:
            amount = Decimal(str(raw).replace(",", "").strip())
        except InvalidOperation:
            errors.append("invalid_number")
        else:
            if not amount.is_finite():
                errors.append("invalid_number")
            elif amount <= 0:
                errors.append("amount_not_positive")
            elif amount > MAX_TRANSACTION_KES:
                errors.append("amount_above_limit")
            elif amount != amount.quantize(Decimal("0.01")):
                errors.append("invalid_number")
    if errors:
        amount = None  # refused below; a NaN or an out-of-range number never enters the state
    draft = Draft(type=type_, amount=amount, text=str(fields.get("text") or "")[:2000])
    update: dict[str, object] = {}
    candidates: list[Candidate] = []
    phone = str(fields.get("phone") or "").strip()
    recipient = str(fields.get("recipient") or "").strip()
    if phone:
        normal = normalise_phone(phone)
        if normal is None:
            errors.append("invalid_phone")
        else:
            update["phone"] = normal
            update["recipient_name"] = contact_name_by_phone(normal, world)
    elif recipient and type_ in ("send_phone", "buy_goods_pochi"):
        heard = u.read_slot("recipient", recipient[:200], world.contacts)
        errors += list(heard.errors)
        update.update(changes(heard, world))
        candidates = candidates_of(heard.candidates, world)
    for key, slot in (
        ("till", "till"),
        ("paybill", "paybill"),
        ("account", "account"),
        ("agent", "agent"),
        ("store", "store"),
    ):
        value = str(fields.get(key) or "").strip()
        if value:
            heard = u.read_slot(slot, value[:64], world.contacts)
            got = dict(heard.fields).get(key)
            if got is None:
                errors.append("invalid_number")
            else:
                update[key] = got
    bank = str(fields.get("bank") or fields.get("bank_code") or "").strip()
    if bank:
        if bank.isdigit() and bank_name(bank.zfill(2)):
            update["bank_code"] = bank.zfill(2)
        else:
            got = dict(u.read_slot("bank", bank[:64], world.contacts).fields).get("bank_code")
            if got is None:
                errors.append("invalid_number")
            else:
                update["bank_code"] = got
    return draft.model_copy(update=update), candidates, tuple(dict.fromkeys(errors))
