"""Finding the contact a spoken name means, with rapidfuzz, without ever guessing.

The index is built once per contact list (names, first and last names and nicknames normalised the way the
tokenizer normalises speech), so a parse costs one rapidfuzz scan per candidate name span.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from rapidfuzz import fuzz, process

from intents.data_files import load_yaml
from intents.models import Contact
from intents.phones import normalise_phone
from intents.tokens import tokenize_words

# Below this similarity (0..100) a name is not considered at all.
CANDIDATE_SCORE = 80.0
# From this similarity up, one clear winner is taken as meant (speech slips like Odiambo/Odhiambo score ~93).
CERTAIN_SCORE = 90.0
# Two contacts whose scores are this close are equally likely: ask which one.
AMBIGUOUS_MARGIN = 6.0
# Keys or spoken names shorter than this only match exactly: "jk" vs "jo" is not a slip, it is someone else.
MIN_FUZZY_LEN = 4


# Spelled differently but sounding the same ("Josef" / "Joseph", "Lucie" / "Lucy"): a slip of the recogniser,
# taken as meant but below 100, so the read-back confirms it.
SOUND_SCORE = 92.0
# Spellings that sound alike, folded to one form (order matters: "ph" before "h" rules).
_SOUNDS = (
    ("ph", "f"),
    ("ck", "k"),
    ("dh", "d"),
    ("th", "t"),
    ("kh", "k"),
    ("oo", "u"),
    ("ee", "i"),
    ("ie", "i"),
    ("y", "i"),
    ("c", "k"),
    ("q", "k"),
    ("x", "ks"),
    ("z", "s"),
)
# A short form ("Kevo" for Kevin) scores this: a candidate worth reading back, never a certain match.
SHORT_SCORE = 85.0
# Sheng endings added to a shortened name ("Kev" + "o", "Coll" + "o"); stripped to find the stem.
_SHORT_ENDINGS = ("osh", "oh", "ie", "sh", "o", "y", "i", "e", "s")
# A stem must be at least this long to stand for a name ("Kev" for Kevin, never "Ke").
_MIN_STEM = 3


@dataclass(frozen=True)
class Match:
    """A contact's best score for one spoken name."""

    index: int
    score: float
    short: bool = False  # found through a short form of the name, not the name itself


@cache
def short_forms() -> dict[str, tuple[str, ...]]:
    """Full name -> its common short forms (data/short_names.yaml), loaded once."""
    raw = load_yaml("short_names.yaml")["short_names"]
    return {str(k).lower(): tuple(str(v).lower() for v in forms or ()) for k, forms in raw.items()}


@cache
def _long_forms() -> dict[str, frozenset[str]]:
    """Short form -> the full names it shortens (short_forms() turned round), built once."""
    reverse: dict[str, set[str]] = {}
    for full, forms in short_forms().items():
        for f in forms:
            reverse.setdefault(f, set()).add(full)
    return {k: frozenset(v) for k, v in reverse.items()}


class ContactIndex:
    """Normalised lookup keys for one contact list; build once and pass to `parse` for speed."""

    def __init__(self, contacts: Iterable[Contact | Mapping[str, Any]]) -> None:
        self.contacts: list[Contact] = [
            c if isinstance(c, Contact) else Contact.model_validate(c) for c in contacts
        ]
        owners: dict[str, set[int]] = {}
        self.by_phone: dict[str, int] = {}
        for i, c in enumerate(self.contacts):
            for key in _keys(c):
                owners.setdefault(key, set()).add(i)
            phone = normalise_phone(c.phone_number) if c.phone_number else None
            if phone is not None:
                self.by_phone.setdefault(phone, i)
        self.keys: list[str] = list(owners)
        self.owners: list[tuple[int, ...]] = [tuple(sorted(owners[k])) for k in self.keys]
        self.exact: dict[str, tuple[int, ...]] = dict(zip(self.keys, self.owners, strict=True))
        self.phone_of: list[str | None] = [
            normalise_phone(c.phone_number) if c.phone_number else None for c in self.contacts
        ]
        self.known_words: frozenset[str] = frozenset(w for k in self.keys for w in k.split())
        self.short: dict[str, set[int]] = {}  # short form said -> contacts whose name it shortens
        self.prefixes: dict[str, set[int]] = {}  # first letters of a name word -> contacts
        table, reverse = short_forms(), _long_forms()
        for i, c in enumerate(self.contacts):
            for w in set(tokenize_words(c.name)):
                for f in (*table.get(w, ()), *reverse.get(w, ())):
                    self.short.setdefault(f, set()).add(i)  # "Kevo" for Kevin, "Kevin" for a saved "Kevo"
                for k in range(_MIN_STEM, len(w)):
                    self.prefixes.setdefault(w[:k], set()).add(i)
        self.short_keys: list[str] = list(self.short)
        self.sounds: dict[str, set[int]] = {}
        for key, owners_of in zip(self.keys, self.owners, strict=True):
            if len(key) >= MIN_FUZZY_LEN:
                self.sounds.setdefault(sound(key), set()).update(owners_of)

    def __len__(self) -> int:
        return len(self.contacts)

    def match(self, spoken: str) -> list[Match]:
        """Contacts that could be meant by `spoken`, best first (one entry per contact)."""
        best: dict[int, float] = {}
        for i in self.exact.get(spoken, ()):
            best[i] = 100.0
        if len(spoken) >= MIN_FUZZY_LEN:
            for i in self.sounds.get(sound(spoken), ()):
                best[i] = max(best.get(i, 0.0), SOUND_SCORE)
        if len(spoken) >= MIN_FUZZY_LEN and self.keys:
            for key, score, pos in process.extract(
                spoken, self.keys, scorer=fuzz.ratio, score_cutoff=CANDIDATE_SCORE, limit=12
            ):
                if len(key) < MIN_FUZZY_LEN:
                    continue
                for i in self.owners[pos]:
                    if score > best.get(i, 0.0):
                        best[i] = float(score)
        return sorted((Match(i, s) for i, s in best.items()), key=lambda m: (-m.score, m.index))

    def match_short(self, spoken: str) -> list[Match]:
        """Contacts whose name `spoken` may shorten: a known short form ("Kevo", "Shiku"), a near one
        ("Kevoh"), or the start of the name with a Sheng ending ("Coll-o", "Kipr-o"). Never certain."""
        if " " in spoken or len(spoken) < 2:
            return []
        found: set[int] = set(self.short.get(spoken, ()))
        if not found and len(spoken) >= MIN_FUZZY_LEN and self.short_keys:
            for key, _, _ in process.extract(
                spoken, self.short_keys, scorer=fuzz.ratio, score_cutoff=86, limit=3
            ):
                found |= self.short[key]
        if not found:
            stems = {spoken} | {spoken[: -len(e)] for e in _SHORT_ENDINGS if spoken.endswith(e)}
            for stem in stems:
                if len(stem) >= _MIN_STEM:
                    found |= self.prefixes.get(stem, set())
        return [Match(i, SHORT_SCORE, short=True) for i in sorted(found)]


def sound(text: str) -> str:
    """A rough key of how a name sounds: "Josef" and "Joseph", "Moosa" and "Musa" get the same one."""
    for a, b in _SOUNDS:
        text = text.replace(a, b)
    return "".join(ch for k, ch in enumerate(text) if k == 0 or text[k - 1] != ch)  # "ll" sounds like "l"


def _keys(c: Contact) -> set[str]:
    """Ways a contact may be called: full name, first name, last name, nickname, name reversed, and the first
    words of a longer name (when two contacts share them, both are candidates: the key has two owners)."""
    keys: set[str] = set()
    words = tokenize_words(c.name)
    if words:
        keys.add(" ".join(words))
        keys.add(words[0])
        if len(words) > 1:
            keys.add(words[-1])
            keys.add(" ".join(reversed(words)))
            keys.add(" ".join((words[0], words[-1])))
            for k in range(2, len(words)):
                keys.add(" ".join(words[:k]))  # "Baba Junior" for "Baba Junior Kisumu": the name as it starts
    if c.nickname:
        nick = tokenize_words(c.nickname)
        if nick:
            keys.add(" ".join(nick))
    return {k for k in keys if k}


# Indexes of the contact lists of recent turns, by content, at most this many contacts in all (an index of
# 500 contacts takes about 1.5 MB and 15 ms to build).
_CACHED_CONTACTS = 20_000
_cache: OrderedDict[tuple[tuple[object, ...], ...], ContactIndex] = OrderedDict()
_cached_total = 0


def index_of(contacts: Sequence[Mapping[str, Any]]) -> ContactIndex:
    """The index of a contact list read from the database, built once per distinct list: every turn of a
    conversation reads the person's contacts afresh (so an edit counts at once), and building the index
    costs more than the rest of the turn for a long address book. The key is the whole content, so a list
    that changed in any way gets a new index. An index is never changed after it is built."""
    global _cached_total
    key = tuple((c.get("id"), c.get("name"), c.get("phone_number"), c.get("nickname")) for c in contacts)
    found = _cache.get(key)
    if found is not None:
        _cache.move_to_end(key)
        return found
    index = ContactIndex(contacts)
    if len(key) <= _CACHED_CONTACTS:
        _cache[key] = index
        _cached_total += len(key)
        while _cached_total > _CACHED_CONTACTS:
            old, _ = _cache.popitem(last=False)
            _cached_total -= len(old)
    return index
