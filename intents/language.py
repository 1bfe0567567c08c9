"""Which language an utterance is mostly in (`en` or `sw`), from word lists in data/language.yaml."""

from __future__ import annotations

from typing import Literal

from intents.vocabulary import vocabulary

Language = Literal["en", "sw"]


def language_of(tokens: list[str]) -> Language:
    """Count words only Swahili (or Sheng) uses against words only English uses; a tie goes to the first."""
    v = vocabulary()
    sw = en = 0
    first: Language | None = None
    for t in tokens:
        if t in v.english_words:
            en += 1
            first = first or "en"
        elif t in v.swahili_words or (
            t not in v.verb_exceptions and (v.swahili_past.match(t) or v.swahili_negative.match(t))
        ):
            sw += 1
            first = first or "sw"
    if sw != en:
        return "sw" if sw > en else "en"
    return first or "en"
