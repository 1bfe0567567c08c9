"""Reading one utterance in the light of the conversation: yes, no, a correction, a slot's answer, a choice.

Pure helpers over `intents.parse` and the word lists in `data/words.yaml`. A short answer ("700", "Equity",
"Kamau") means nothing to the parser alone, so it is read inside a prompt for the slot asked ("send 700").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from intents import ContactIndex, ParseResult, parse
from intents.answers import value_of_answer
from intents.models import TXN_TYPES
from intents.tokens import tokenize_words
from voice_server.dialogue.state import recipient_of
from voice_server.dialogue.wording import Language, words


def tokens(text: str) -> list[str]:
    return tokenize_words(text)


@cache
def _word_set(name: str) -> frozenset[str]:
    return frozenset(str(w) for w in words()[name] if " " not in str(w))


@cache
def _phrases(name: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(tokenize_words(str(w))) for w in words()[name] if " " in str(w))


def _has_phrase(toks: Sequence[str], name: str) -> bool:
    for phrase in _phrases(name):
        n = len(phrase)
        if any(tuple(toks[i : i + n]) == phrase for i in range(len(toks) - n + 1)):
            return True
    return any(t in _word_set(name) for t in toks)


def _strip_phrases(toks: Sequence[str], name: str) -> list[str]:
    out = list(toks)
    for phrase in _phrases(name):
        n = len(phrase)
        i = 0
        while i <= len(out) - n:
            if tuple(out[i : i + n]) == phrase:
                del out[i : i + n]
            else:
                i += 1
    return out


def is_yes(toks: Sequence[str]) -> bool:
    return _is_bare(toks, "affirm")


def is_no(toks: Sequence[str]) -> bool:
    """A bare refusal ("no", "hapana", "no cancel it"); "no, make it 700" is not bare."""
    return _is_bare(toks, "refuse")


def _is_bare(toks: Sequence[str], name: str) -> bool:
    if not toks:
        return False
    rest = _strip_phrases(toks, name)
    found = len(rest) < len(toks)
    for t in rest:
        if t in _word_set(name):
            found = True
        elif t not in _word_set("filler"):
            return False
    return found


def has_no_marker(toks: Sequence[str]) -> bool:
    return _has_phrase(toks, "refuse")


def is_help(toks: Sequence[str]) -> bool:
    return _has_phrase(toks, "help") and len(toks) <= 6


def is_goodbye(toks: Sequence[str]) -> bool:
    return _has_phrase(toks, "goodbye") and not any(t.isdigit() for t in toks)


def asks_balance(toks: Sequence[str]) -> bool:
    return _has_phrase(toks, "balance") and not any(t[0].isdigit() for t in toks)


def asks_history(toks: Sequence[str]) -> bool:
    return _has_phrase(toks, "history") and not any(t[0].isdigit() for t in toks)


def detect_language(text: str, previous: Language, hint: Language | None = None) -> Language:
    """The language of the utterance: the recogniser's hint, else the side with more marker words, else the
    language of the conversation so far (numbers and names count for neither)."""
    if hint in ("en", "sw"):
        return hint
    sw = en = 0
    for t in tokenize_words(text):
        in_sw, in_en = t in _word_set("sw"), t in _word_set("en")
        if in_sw and not in_en:
            sw += 1
        elif in_en and not in_sw:
            en += 1
    if sw > en:
        return "sw"
    if en > sw:
        return "en"
    return previous


def core_of_correction(toks: Sequence[str]) -> str:
    """The change in a correction, markers removed: "no, make it 700" -> "700"."""
    drop = _word_set("correction") | _word_set("refuse") | _word_set("filler")
    rest = _strip_phrases(_strip_phrases(toks, "correction"), "refuse")
    return " ".join(t for t in rest if t not in drop or t[0].isdigit())


# --- slots -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """What an answer or a correction changes: any of amount, recipient fields, a contact, candidates."""

    amount: Decimal | None = None
    fields: tuple[tuple[str, str], ...] = ()
    contact_id: str | None = None
    candidates: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    type: str | None = None

    @property
    def empty(self) -> bool:
        return self.amount is None and not self.fields and not self.candidates and not self.errors


_NUMBER_SLOTS = frozenset({"till", "paybill", "account", "agent", "store"})
_DIGIT_GROUPS = re.compile(r"\d[\d\s-]*")


def read_slot(slot: str, answer: str, contacts: ContactIndex) -> Heard:
    """The value of `slot` in a short answer, read through the slot's prompt (see words.yaml)."""
    answer = value_of_answer(answer)  # "the till is 445566", "ni namba 445566", "it's 445566"
    if slot in _NUMBER_SLOTS and _DIGIT_GROUPS.fullmatch(answer.strip()):
        answer = re.sub(r"\D", "", answer)  # "55 44 33" said for a till is one number
    prompt = str(words()["slot_prompts"][slot]).format(answer=answer)
    result = parse(prompt, contacts)
    return _heard(result, only_slot=slot)


def read_change(text: str, current_type: str, contacts: ContactIndex) -> Heard:
    """What a correction changes: the full utterance first, then its core read as an amount or recipient."""
    toks = tokenize_words(text)
    core = core_of_correction(toks)
    if not core:
        return Heard()
    whole = parse(core, contacts)
    heard = _heard(whole, only_slot=None)
    if whole.type in TXN_TYPES and whole.type != current_type and (heard.fields or heard.candidates):
        return heard
    amount = heard.amount
    fields = dict(heard.fields)
    contact_id, candidates, errors = heard.contact_id, heard.candidates, list(heard.errors)
    if amount is None:
        as_amount = parse(f"send {core}", contacts)
        if as_amount.amount is not None and not as_amount.phone and not as_amount.contact_id:
            amount = as_amount.amount
            errors += [e for e in as_amount.errors if e.startswith("amount")]
    if current_type in ("send_phone", "buy_goods_pochi") and not fields.get("phone"):
        as_person = parse(f"send {core}", contacts)
        if as_person.phone or as_person.candidates:
            fields["phone"] = as_person.phone
            contact_id = as_person.contact_id
            candidates = tuple(as_person.candidates)
            errors += [e for e in as_person.errors if e == "invalid_phone"]
        elif "invalid_phone" in as_person.errors:
            errors.append("invalid_phone")
    fields = {k: v for k, v in fields.items() if v}
    return Heard(
        amount=amount,
        fields=tuple(sorted(fields.items())),
        contact_id=contact_id,
        candidates=candidates,
        errors=tuple(dict.fromkeys(errors)),
        type=None,
    )


def _heard(result: ParseResult, only_slot: str | None) -> Heard:
    fields = recipient_of(result, filled=True)
    amount = result.amount
    errors = tuple(result.errors)
    if only_slot is not None:
        wanted = {
            "amount": (),
            "recipient": ("phone",),
            "till": ("till",),
            "paybill": ("paybill",),
            "account": ("account",),
            "agent": ("agent",),
            "store": ("store",),
            "bank": ("bank_code",),
        }[only_slot]
        fields = {k: v for k, v in fields.items() if k in wanted}
        if only_slot != "amount":
            amount = None
            errors = tuple(e for e in errors if e == "invalid_phone" and only_slot == "recipient")
        else:
            errors = tuple(e for e in errors if e.startswith("amount") or e == "invalid_number")
        candidates = tuple(result.candidates) if only_slot == "recipient" else ()
        contact_id = result.contact_id if only_slot == "recipient" else None
        return Heard(amount, tuple(sorted(fields.items())), contact_id, candidates, errors, None)
    return Heard(
        amount,
        tuple(sorted(fields.items())),
        result.contact_id,
        tuple(result.candidates),
        errors,
        result.type if result.type in TXN_TYPES else None,
    )


def choose(text: str, names: Sequence[str]) -> int | None:
    """Which of the named candidates the answer picks (by a word of the name or by position), or None."""
    toks = tokenize_words(text)
    picked: set[int] = set()
    for i, name in enumerate(names):
        name_words = set(tokenize_words(name))
        if toks and name_words & set(toks):
            distinctive = name_words - {w for j, n in enumerate(names) if j != i for w in tokenize_words(n)}
            if distinctive & set(toks):
                picked.add(i)
    if len(picked) == 1:
        return picked.pop()
    ordinals: dict[str, object] = words()["ordinals"]
    for position, spoken in ordinals.items():
        options = [tuple(tokenize_words(str(s))) for s in spoken]  # type: ignore[attr-defined]
        for option in options:
            n = len(option)
            if any(tuple(toks[i : i + n]) == option for i in range(len(toks) - n + 1)):
                index = int(position) - 1
                if 0 <= index < len(names):
                    return index
    return None
