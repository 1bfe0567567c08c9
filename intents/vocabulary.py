"""The parser's vocabulary, loaded once from `data/vocabulary.yaml` so that words live in data, not code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from intents.banks import bank_phrases
from intents.billers import biller_phrases
from intents.data_files import load_yaml

# Roles a word or phrase can play; the YAML may only use these (a typo there should fail loudly at import).
ROLES = frozenset(
    {
        "send",
        "pay",
        "buy_goods",
        "withdraw",
        "till",
        "paybill",
        "account",
        "agent",
        "store",
        "pochi",
        "from",
        "to",
        "for",
        "bank",
        "mpesa",
        "amount",
        "number",
        "balance",
        "history",
        "currency",
        "minus",
        "negation",
        "self",
        "filler",
        "quantity",
        "correction",
        "question",
        "cost",
        "unsupported",
        "past_time",
        "hearsay",
    }
)


@dataclass(frozen=True)
class NumberWords:
    """Number vocabulary, in the shapes the number grammar needs."""

    digits: dict[str, int]
    zero_in_digits: frozenset[str]
    repeaters: dict[str, int]
    swahili: frozenset[str]
    teens: dict[str, int]
    tens: dict[str, int]
    after: dict[str, Decimal]
    before: dict[str, Decimal]
    article: frozenset[str]
    joiners: frozenset[str]
    point: frozenset[str]
    homophones: dict[str, int]


@dataclass(frozen=True)
class Vocabulary:
    """Phrase table (first word -> phrases, longest first) plus the number words."""

    phrases: dict[str, list[tuple[tuple[str, ...], str]]]
    numbers: NumberWords
    roles_of_word: dict[str, str] = field(default_factory=dict)
    past_tense: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()
    always_past: frozenset[str] = frozenset()
    swahili_past: re.Pattern[str] = re.compile(r"(?!)")
    swahili_negative: re.Pattern[str] = re.compile(r"(?!)")
    verb_exceptions: frozenset[str] = frozenset()
    swahili_words: frozenset[str] = frozenset()
    interrogatives: frozenset[str] = frozenset()
    call_off: frozenset[str] = frozenset()
    have_words: frozenset[str] = frozenset()
    english_words: frozenset[str] = frozenset()
    polite: frozenset[str] = frozenset()
    honorifics: frozenset[str] = frozenset()
    cost_questions: frozenset[str] = frozenset()


def _words(items: list[Any]) -> list[str]:
    if any(isinstance(x, bool) for x in items):
        raise ValueError("a word read as true/false: quote yes, no, on, off in the YAML")
    return [str(x).strip().lower() for x in items if x is not None and str(x).strip()]


def _build_numbers(raw: dict[str, Any]) -> NumberWords:
    return NumberWords(
        digits={str(k): int(v) for k, v in raw["digits"].items()},
        zero_in_digits=frozenset(_words(raw["zero_in_digits"])),
        repeaters={str(k): int(v) for k, v in raw["repeaters"].items()},
        swahili=frozenset(_words(raw["swahili_words"])),
        teens={str(k): int(v) for k, v in raw["teens"].items()},
        tens={str(k): int(v) for k, v in raw["tens"].items()},
        after={str(k): Decimal(v) for k, v in raw["multipliers_after"].items()},
        before={str(k): Decimal(v) for k, v in raw["multipliers_before"].items()},
        article=frozenset(_words(raw["article"])),
        joiners=frozenset(_words(raw["joiners"])),
        point=frozenset(_words(raw["point"])),
        homophones={str(k): int(v) for k, v in raw["homophones"].items()},
    )


def _alt(items: list[Any]) -> str:
    return "|".join(sorted((re.escape(w) for w in _words(items)), key=len, reverse=True))


def _swahili_verbs(raw: dict[str, Any]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Past ("nilituma", "alinitumia") and negative ("usitume", "sijatuma") forms of the payment verbs."""
    stems, objects = _alt(raw["stems"]), _alt(raw["objects"])
    subject, tense = _alt(raw["past_subjects"]), _alt(raw["past_tenses"])
    past = re.compile(rf"^(?:{subject})(?:{tense})(?:{objects})?(?:{stems})[a-z]*$")
    negative = re.compile(
        rf"^(?:(?:{_alt(raw['negative_prefixes'])})(?:{objects})?(?:{stems})[a-z]*"
        rf"|(?:{_alt(raw['negative_any'])})[a-z]{{3,}})$"
    )
    return past, negative


@cache
def vocabulary() -> Vocabulary:
    """Build the phrase table from the vocabulary and the bank directory (banks are phrases too)."""
    raw = load_yaml("vocabulary.yaml")
    table: dict[tuple[str, ...], str] = {}
    for role, items in raw["roles"].items():
        if role not in ROLES:
            raise ValueError(f"vocabulary.yaml: unknown role {role!r}")
        for phrase in _words(items):
            table.setdefault(tuple(phrase.split()), role)
    for phrase, code in bank_phrases().items():
        table[tuple(phrase.split())] = f"bank:{code}"
    for phrase, biller in biller_phrases().items():
        table.setdefault(tuple(phrase.split()), f"biller:{biller}")
    phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for key, role in table.items():
        phrases.setdefault(key[0], []).append((key, role))
    for entries in phrases.values():
        entries.sort(key=lambda e: -len(e[0]))
    single = {k[0]: r for k, r in table.items() if len(k) == 1}
    past, negative = _swahili_verbs(raw["swahili_verbs"])
    lang = load_yaml("language.yaml")
    return Vocabulary(
        phrases=phrases,
        numbers=_build_numbers(raw["numbers"]),
        roles_of_word=single,
        past_tense=frozenset(_words(raw["past_tense"])),
        subjects=frozenset(_words(raw["subjects"])),
        always_past=frozenset(_words(raw["always_past"])),
        swahili_past=past,
        swahili_negative=negative,
        verb_exceptions=frozenset(_words(raw["swahili_verbs"]["exceptions"])),
        swahili_words=frozenset(_words(lang["sw"])) | frozenset(_words(raw["numbers"]["swahili_words"])),
        english_words=frozenset(_words(lang["en"])),
        interrogatives=frozenset(_words(raw["interrogatives"])),
        call_off=frozenset(_words(raw["call_off"])),
        have_words=frozenset(_words(raw["have_words"])),
        polite=frozenset(_words(raw["polite_before_verbs"])),
        honorifics=frozenset(_words(raw["honorifics"])),
        cost_questions=frozenset(_words(raw["cost_question_words"])),
    )
