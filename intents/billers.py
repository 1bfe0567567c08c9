"""Billers people name instead of their Pay Bill number (data/billers.yaml): "pay my DStv", "lipa stima"."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache

from intents.data_files import load_yaml
from intents.tokens import tokenize_words


@dataclass(frozen=True)
class Variant:
    name: str
    paybill: str
    when: frozenset[str]


@dataclass(frozen=True)
class Biller:
    name: str
    paybill: str | None  # None: the business number is not known for sure, so the parser asks for it
    names: tuple[str, ...]
    variants: tuple[Variant, ...] = ()

    def paybill_for(self, words: Collection[str]) -> str | None:
        """The business number, choosing a variant ("kplc tokens" is prepaid) from the words said."""
        for v in self.variants:
            if v.when & set(words):
                return v.paybill
        return self.paybill


@cache
def billers() -> tuple[Biller, ...]:
    """All billers, loaded once; a biller's key is its position in this tuple."""
    out: list[Biller] = []
    for entry in load_yaml("billers.yaml")["billers"]:
        paybill = entry.get("paybill")
        variants = tuple(
            Variant(
                name=str(v["name"]),
                paybill=str(v["paybill"]),
                when=frozenset(str(w).lower() for w in v["when"]),
            )
            for v in entry.get("variants") or ()
        )
        out.append(
            Biller(
                name=str(entry["name"]),
                paybill=None if paybill is None else str(paybill),
                names=tuple(str(n).strip().lower() for n in entry["names"]),
                variants=variants,
            )
        )
    return tuple(out)


def biller_phrases() -> dict[str, int]:
    """Every spoken biller name (as the tokenizer will see it) mapped to the biller's key."""
    out: dict[str, int] = {}
    for key, biller in enumerate(billers()):
        for name in biller.names:
            words = tokenize_words(name)
            if words:
                out.setdefault(" ".join(words), key)
    return out
