"""A set of phrases of one or more words found in a token list, longest first at each position."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence


class Phrases:
    """Phrases (as lists of lower-case words) with a label each; `at` finds the longest one at a position."""

    def __init__(self, phrases: Iterable[str], value: Callable[[str], str] | None = None) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase in phrases:
            words = tuple(str(phrase).lower().split())
            if words:
                label = value(phrase) if value else phrase
                self._by_first.setdefault(words[0], []).append((words, label))
        for entries in self._by_first.values():
            entries.sort(key=lambda e: -len(e[0]))

    def at(self, toks: Sequence[str], i: int) -> tuple[str, int] | None:
        """The phrase starting at toks[i] (its label and length), or None."""
        for words, label in self._by_first.get(toks[i], ()):
            if tuple(toks[i : i + len(words)]) == words:
                return label, len(words)
        return None

    def find(self, toks: Sequence[str]) -> list[str]:
        """Every phrase said, left to right (a longer phrase hides the shorter ones inside it)."""
        out: list[str] = []
        i = 0
        while i < len(toks):
            hit = self.at(toks, i)
            if hit is None:
                i += 1
                continue
            out.append(hit[0])
            i += hit[1]
        return out

    def __contains__(self, toks: object) -> bool:
        return isinstance(toks, list | tuple) and bool(self.find(toks))
