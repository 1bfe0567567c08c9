"""Turn raw transcribed text into lower-case word tokens (no meaning attached yet)."""

from __future__ import annotations

import re
import unicodedata

# A minus sign that is a sign, not a hyphen inside "0712-345-678".
_MINUS = re.compile(r"(?<![\w/])-(?=\d)")
# "a/c" is how people write "account".
_AC = re.compile(r"\ba/c\b")
# Tokens: currency marks; a foreign one ("$") or "%" is a word the parser does not know, so it asks;
# numbers with thousands commas ("2,500" stays one token: it is an amount);
# numbers (optionally +, decimals, a glued suffix like "k" or "bob"); words.
_TOKEN = re.compile(
    r"/=|/-|\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)[a-z]*|\+?\d+(?:\.\d+)*[a-z]*"
    r"|(?:kshs|ksh|kes|shs|sh)\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)|(?:kshs|ksh|kes|shs|sh)\d+(?:\.\d+)*"
    r"|[a-z0-9]+(?:[&'\-][a-z0-9]+)*|&|#|[$€£%]"
)
# Number with a glued suffix: "1.5k", "500bob", "200sh".
_NUM_SUFFIX = re.compile(r"^(\+?\d[\d,]*(?:\.\d+)*)([a-z]+)$")
# Suffixes split off a number ("500bob" -> "500", "bob"); "k" stays glued because it changes the value.
_CURRENCY_SUFFIXES = frozenset({"bob", "sh", "shs", "ksh", "kshs", "kes", "shillings", "shilingi"})
# Currency glued before digits: "ksh1500", "ksh78.99", "ksh1,500".
_CUR_PREFIX = re.compile(r"^(kshs|ksh|kes|shs|sh)(\d[\d,]*(?:\.\d+)*)$")


def _fold(text: str) -> str:
    """Lower-case and strip accents so 'José' and 'jose' are the same word; drop anything else odd."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.replace("\u2019", "'").replace("\u2018", "'").lower()


def tokenize_words(text: str) -> list[str]:
    """Split text into tokens; numbers keep their separators' meaning, suffixes become their own token."""
    s = _fold(text)
    s = _AC.sub(" acc ", s)
    s = _MINUS.sub(" minus ", s)
    out: list[str] = []
    for tok in _TOKEN.findall(s):
        m = _CUR_PREFIX.match(tok)
        if m:
            out.extend((m.group(1), m.group(2)))
            continue
        m = _NUM_SUFFIX.match(tok)
        if m and m.group(2) in _CURRENCY_SUFFIXES:
            out.extend((m.group(1), m.group(2)))
            continue
        if len(tok) > 1 and tok[-1] in "'-" and tok[0] != "/":
            tok = tok.rstrip("'-")
        if len(tok) > 3 and tok.endswith("'s") and tok not in ("what's", "let's", "that's", "it's"):
            tok = tok[:-2]  # "John Doe's number": the name is "doe"
        out.append(tok)
    return out
