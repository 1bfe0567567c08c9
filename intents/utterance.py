"""One utterance being read: its tokens, the contacts it is read against, the evidence for the confidence,
and lookups over the tokens (which vocabulary phrase starts here, does money follow) the readers share.

The parser is a chain of readers, each in its own module and each building on the one before:
utterance -> number_items (numbers in context) -> slots -> recipients -> non_commands -> commands -> parser.
"""

from __future__ import annotations

import re

from intents import confidence as conf
from intents import stories
from intents.contacts import ContactIndex
from intents.language import language_of
from intents.numbers import is_number_word
from intents.tokens import tokenize_words
from intents.vocabulary import vocabulary

# Longer input is not one spoken command; only this many tokens are read, the rest count as not understood.
MAX_TOKENS = 60
MAX_CHARS = 2000
_RAW_AMOUNT = re.compile(r"^\d[\d,]*(?:\.\d+)?k?$")

VOCAB = vocabulary()
WORDS = VOCAB.numbers


class Utterance:
    """The state every reader shares; no reading is done here."""

    def __init__(self, text: str, index: ContactIndex, asr: float | None) -> None:
        self.text = text
        self.index = index
        tokens = _words(text[:MAX_CHARS])
        self.overflow = max(0, len(tokens) - MAX_TOKENS) + (len(text) > MAX_CHARS)
        said = tokens[:MAX_TOKENS]
        self.folded = text[:MAX_CHARS].lower()
        self.ev = conf.Evidence(tokens=len(tokens), asr=asr)
        self.language = language_of(said)  # the story around the command is in the person's language too
        clauses = stories.clause_starts(text[:MAX_CHARS], _words, len(tokens))
        story = set(stories.set_aside(said, clauses, lambda i: phrase_at(said, i), index.known_words))
        self.tokens = [t for k, t in enumerate(said) if k not in story]
        # The last group of an account said in groups, which may be the amount instead ("0123 456 789 1000").
        self.account_tail: tuple[str, str] | None = None
        # A question word was said ("what", "how", "je"): with a fee word, the price is asked.
        self.price_asked = False

    def _role_at(self, i: int) -> str | None:
        role, size = self._phrase(i)
        return role if size == 1 and role else None

    def _phrase(self, i: int) -> tuple[str, int]:
        return phrase_at(self.tokens, i)

    def _leads_count(self, i: int) -> bool:
        """A Sheng multiplier said before its count ("mbao tatu", "thao 2"): it starts a number."""
        toks = self.tokens
        if i + 1 >= len(toks) or toks[i] not in WORDS.before:
            return False
        nxt = toks[i + 1]
        return nxt in WORDS.digits or nxt in WORDS.tens or nxt in WORDS.teens or nxt.isdigit()

    def _money_follows(self, j: int) -> bool:
        """A currency word right after toks[j] that does not introduce a number of its own ("500 bob")."""
        toks, n = self.tokens, len(self.tokens)
        if j + 1 >= n or self._role_at(j + 1) != "currency":
            return False
        after = toks[j + 2] if j + 2 < n else ""
        return not (after.isdigit() or is_number_word(WORDS, after) or _RAW_AMOUNT.match(after))


def phrase_at(toks: list[str], i: int) -> tuple[str, int]:
    """The vocabulary phrase starting at toks[i]: its role and length ("", 1 when none)."""
    for phrase, role in VOCAB.phrases.get(toks[i], ()):
        if tuple(toks[i : i + len(phrase)]) == phrase:
            return role, len(phrase)
    return "", 1


def _words(text: str) -> list[str]:
    return split_number_hyphens(tokenize_words(text))


def split_number_hyphens(tokens: list[str]) -> list[str]:
    """ "twenty-five" is two number words; "co-op" and "m-pesa" stay whole."""
    out: list[str] = []
    for t in tokens:
        parts = t.split("-") if "-" in t else ()
        if len(parts) > 1 and all(is_number_word(WORDS, p) and not p[:1].isdigit() for p in parts):
            out.extend(parts)
        else:
            out.append(t)
    return out
