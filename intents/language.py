"""Which language an utterance is mostly in (`en` or `sw`), from word lists in data/language.yaml."""

from __future__ import annotations

from functools import cache
from typing import Literal

from intents.data_files import load_yaml
from intents.phrases import Phrases
from intents.vocabulary import vocabulary

Language = Literal["en", "sw"]


@cache
def _lists() -> tuple[Phrases, frozenset[str]]:
    raw = load_yaml("language.yaml")
    return Phrases(raw["products"]), frozenset(str(w).lower() for w in raw["sw_grammar"])


def language_of(tokens: list[str]) -> Language:
    """Count words only Swahili (or Sheng) uses against words only English uses; Swahili grammar words
    count three times; a product's name ("Lipa na M-Pesa") counts for neither; a tie goes to the first."""
    v = vocabulary()
    products, grammar = _lists()
    sw = en = 0
    first: Language | None = None
    i = 0
    while i < len(tokens):
        hit = products.at(tokens, i)
        if hit is not None:
            i += hit[1]
            continue
        t = tokens[i]
        i += 1
        if t in v.english_words:
            en += 1
            first = first or "en"
        elif t in v.swahili_words or (
            t not in v.verb_exceptions and (v.swahili_past.match(t) or v.swahili_negative.match(t))
        ):
            sw += 3 if t in grammar else 1
            first = first or "sw"
    if sw != en:
        return "sw" if sw > en else "en"
    return first or "en"
