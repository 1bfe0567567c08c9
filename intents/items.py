"""The pieces an utterance is cut into (role words, numbers, names, banks, accounts) and small helpers
shared by the parser and the corrections pass."""

from __future__ import annotations

from dataclasses import dataclass

from intents.numbers import Chunk, NumTok
from intents.phones import looks_like_phone

# Roles that may sit between a marker and its number: "till number 123", "pochi ya 0722...".
SKIP_ROLES = frozenset({"number", "filler"})
# Markers that introduce a recipient or a business slot's number.
SLOT_ROLES = ("till", "paybill", "agent", "store", "account", "to", "pochi")


@dataclass
class Item:
    """One meaningful piece of the utterance: a role word, a number chunk, a bank, an account, a word."""

    kind: str  # role | num | chunk | bank | account | word
    text: str
    role: str = ""
    num: NumTok | None = None
    chunk: Chunk | None = None
    size: int = 1  # tokens covered
    whole: bool = False  # a number already joined from spoken groups: never merged with its neighbours


def is_phone(it: Item) -> bool:
    """A number shaped like a phone (a recipient), not an amount or a business number."""
    ch = it.chunk
    return bool(ch and ch.digits and looks_like_phone(ch.digits, ch.plus, recipient=True))


def marker(items: list[Item], p: int) -> str:
    """The slot marker said before item p ("till" in "till number 123"), or "" if none."""
    q = p - 1
    while q >= 0 and items[q].kind == "role" and items[q].role in SKIP_ROLES:
        q -= 1
    return items[q].role if q >= 0 and items[q].kind == "role" else ""
