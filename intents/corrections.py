"""Self-corrections inside one utterance: the later value wins ("send 500 no 600 to mama" is 600,
"to Collins, sorry, to Wanjiru" goes to Wanjiru, "send 600 not 500" is 600), and the read-back confirms it.

Works on the parser's items (after numbers are chunked), before slots are read from them.
"""

from __future__ import annotations

from intents.confidence import CORRECTION, Evidence
from intents.items import SKIP_ROLES, SLOT_ROLES, Item, is_phone, marker
from intents.vocabulary import vocabulary

_CALL_OFF = vocabulary().call_off  # said alone at the end, these call the command off
_BEFORE_NEW_VALUE = ("filler", "correction", "currency", "amount")
_VALUE_KINDS = ("chunk", "word", "account", "bank", "biller")


def apply_corrections(items: list[Item], ev: Evidence) -> list[Item] | None:
    """Apply self-corrections ("500 no 600", "to Collins, sorry, to Wanjiru"): the later value wins.

    Returns None when the utterance ends by calling itself off ("send 500 to mama... no").
    """
    out = list(items)
    p = 0
    while p < len(out):
        it = out[p]
        forward = it.role == "correction" or (it.text == "no" and _value_before(out, p) is not None)
        backward = it.text == "not" and _value_before(out, p) is not None
        if not (forward or backward):
            p += 1
            continue
        q = p + 1
        while q < len(out) and (out[q].role in _BEFORE_NEW_VALUE or out[q].text in ("no", "not")):
            if forward and out[q].text == "not" and q + 1 < len(out):
                q = _restated_end(out, p, q + 1)  # "no sorry, not mama, grace": the wrong value said again
                continue
            q += 1  # "no sorry, make it ksh 800": the new value itself comes after these
        before = _value_before(out, p)
        if q >= len(out):
            if it.text in _CALL_OFF or backward:
                return None  # "tuma 500 kwa mama... hapana": called off
            del out[p:q]
            ev.conflicts += 1  # "send 500 to mama, sorry": what was being corrected? Ask.
            continue
        if before is None:
            del out[p:q]  # "sorry, send 500 to mama": nothing said yet to correct
            if it.text in _CALL_OFF:
                ev.conflicts += 1  # "no, send 500...": a "no" to what? Confirm.
            continue
        if backward:
            # "send 600 not 500 to mama": the value after "not" is the one that is NOT meant.
            old = _replaced(out, q, p)
            if old is None:
                p += 1  # "not" that corrects nothing is a negation
                continue
            end = _value_end(out, q)
            del out[p:end]
            ev.amount *= CORRECTION
            continue
        old = _replaced(out, q, p)
        new = out[q]
        if old is not None and out[old[0]].kind == "account" and new.chunk and new.chunk.digits:
            out[q] = Item("account", new.chunk.digits)  # "account 12345 no 12346"
        del out[p:q]
        if old is not None:
            start, end = old
            del out[start:end]
            p -= end - start
        ev.amount *= CORRECTION
    return out


def _value_before(items: list[Item], p: int) -> int | None:
    """Position of the value (number, name, account, bank) said before position p, skipping fillers."""
    q = p - 1
    while q >= 0 and (items[q].role in ("filler", "correction", "currency") or items[q].text == "no"):
        q -= 1
    return q if q >= 0 and items[q].kind in _VALUE_KINDS else None


def _restated_end(items: list[Item], p: int, q: int) -> int:
    """End of the wrong value said again at q ("..., no, not mama, grace"): as many words as before p."""
    b = _value_before(items, p)
    if b is None or items[b].kind != "word" or items[q].kind != "word":
        return _value_end(items, q)
    start = b
    while start > 0 and items[start - 1].kind == "word":
        start -= 1
    said = [it.text for it in items[start : b + 1]]
    again = [it.text for it in items[q : q + len(said)]]
    return q + len(said) if again == said else _value_end(items, q)


def _value_end(items: list[Item], q: int) -> int:
    """End of the value starting at q: a marker with its value, a run of name words, or one item."""
    end = q + 1
    if items[q].kind == "role" and items[q].role in SLOT_ROLES:
        while end < len(items) and items[end].kind == "role" and items[end].role in SKIP_ROLES:
            end += 1
        if end < len(items) and items[end].kind in _VALUE_KINDS:
            end = _value_end(items, end)
        return end
    if items[q].kind == "word":
        while end < len(items) and items[end].kind == "word":
            end += 1
    return end


def _replaced(items: list[Item], q: int, p: int) -> tuple[int, int] | None:
    """The span (start, end) said before p that the new value at q replaces, or None if none fits."""
    new = items[q]
    if new.kind == "role" and new.role in SLOT_ROLES:
        for r in range(p - 1, -1, -1):  # "to Collins, no, to Wanjiru": the same marker said before
            if items[r].kind == "role" and items[r].role == new.role:
                return r, min(_value_end(items, r), p)
        kind = "recipient" if new.role in ("to", "pochi") else new.role
    elif new.kind in ("bank", "biller"):
        for r in range(p - 1, -1, -1):
            if items[r].kind == new.kind:
                return r, r + 1
        return None
    elif new.kind == "word":
        kind = "recipient"
    elif new.kind == "chunk":
        kind = "phone" if is_phone(new) else "number"
    else:
        return None
    if kind == "number" and new.chunk is not None:
        # "store 2, sorry, 3" corrects the store; "store 2, actually 4000" the amount said before it.
        near = _value_before(items, p)
        slot = marker(items, near) if near is not None else ""
        if near is not None and slot in ("till", "paybill", "agent", "store") and items[near].chunk:
            if abs(len(items[near].text.replace(" ", "")) - len(new.text.replace(" ", ""))) <= 1:
                return near, near + 1
            kind = "amount"
    for r in range(p - 1, -1, -1):
        it = items[r]
        if kind == "amount" and it.kind == "chunk" and not is_phone(it):
            if marker(items, r) not in SLOT_ROLES:
                return r, r + 1
            continue
        if kind in ("recipient", "phone") and (is_phone(it) or (kind == "recipient" and it.kind == "word")):
            start = r
            while it.kind == "word" and start > 0 and items[start - 1].kind == "word":
                start -= 1
            return start, r + 1
        if kind == "account" and it.kind == "account":
            return r, r + 1
        if kind == "number" and it.kind == "account" and r == _value_before(items, p):
            return r, r + 1  # "account 12345 no 12346"
        business = kind in ("number", "till", "paybill", "agent", "store")
        if business and it.kind == "chunk" and not is_phone(it):
            slot = marker(items, r)
            if kind == "number" or slot == kind:
                return r, r + 1
    return None
