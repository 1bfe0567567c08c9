"""From one transcribed utterance to a typed intent:
tokens -> items -> self-corrections -> spending question? -> not-a-command check -> slots -> type -> result.

Pure: no I/O here. Vocabulary, banks, billers, short names and language words are data
(`intents/data/*.yaml`) read once at import. Each step is a reader in its own module, each building on the
one before: utterance -> number_items -> slots -> recipients -> non_commands -> commands; this module
runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from intents.commands import CommandReader
from intents.contacts import ContactIndex
from intents.corrections import apply_corrections
from intents.models import Contact, ParseResult


def parse(
    text: str,
    contacts: ContactIndex | Iterable[Contact | Mapping[str, Any]] = (),
    *,
    asr_confidence: float | None = None,
) -> ParseResult:
    """Understand one utterance. Pass a prebuilt `ContactIndex` when parsing many against one contact list."""
    index = contacts if isinstance(contacts, ContactIndex) else ContactIndex(contacts)
    return _Parse(text, index, _asr(asr_confidence)).run()


def _asr(value: float | None) -> float | None:
    """Accept 0..1 (or a percentage 1..100) from the recogniser."""
    if value is None:
        return None
    v = float(value)
    if v != v:  # NaN: no information
        return 0.0
    return v / 100 if v > 1 else max(0.0, v)


class _Parse(CommandReader):
    """Every reader together; `run` is the pipeline in the order the module docstring gives."""

    def run(self) -> ParseResult:
        said = self._after_question(self.items())
        self.price_asked = self._price_words(said)
        items = apply_corrections(said, self.ev)
        if items is not None:
            asked = self._spending(items)
            if asked is not None:
                return asked
        verdict = "null" if items is None else self._not_a_command(items)
        if verdict == "null" or items is None:
            return ParseResult(text=self.text, confidence=0, language=self.language)
        if verdict:
            return self._query(verdict)
        return self._command(items)
