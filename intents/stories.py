"""Reasons and stories said around a command ("send 700 to Achieng, it's for her bus fare home"), set aside
before the command is read, so that they break neither the name nor the command.

Only a story that holds nothing the parser listens for is set aside: a number, a negation, a correction, a
question, a slot marker or a story of the past inside it keeps it, and the parser reads (and asks) as before.
The words are data (`data/stories.yaml`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from intents.data_files import load_yaml
from intents.numbers import is_number_word
from intents.phrases import Phrases
from intents.vocabulary import vocabulary

# Roles a story may hold and still be set aside: names, fillers, money words, and what the others will do
# ("he will pay me back"). Anything else (numbers, negations, slots, questions...) keeps the story in.
_HARMLESS = frozenset(
    {"", "filler", "for", "to", "from", "self", "currency", "cost", "send", "pay", "buy_goods"}
)
# The verbs that start the command itself: a story told before the command ends there.
_COMMAND = frozenset({"send", "pay", "withdraw", "buy_goods", "paybill", "till"})
# Sentence punctuation that ends a clause ("2,500" and "1.5k" keep theirs).
_CLAUSE_END = re.compile(r"[,;!?]+(?!\d)|\.(?!\d)")


@dataclass(frozen=True)
class StoryWords:
    reasons: Phrases
    verb_start: re.Pattern[str]
    intros: Phrases
    places: Phrases
    pronouns: frozenset[str]


@cache
def story_words() -> StoryWords:
    raw = load_yaml("stories.yaml")
    starts = "|".join(re.escape(str(s)) for s in raw["clause_verb_starts"])
    return StoryWords(
        reasons=Phrases(raw["reason_markers"]),
        verb_start=re.compile(rf"^(?:{starts})[a-z]{{3,}}$"),
        intros=Phrases(raw["name_intros"]),
        places=Phrases(raw["saved_places"]),
        pronouns=frozenset(str(p).lower() for p in raw["pronouns"]),
    )


def clause_starts(text: str, tokenize: Callable[[str], list[str]], count: int) -> frozenset[int]:
    """Token positions where a clause starts (after a comma or full stop in the text); empty when cutting the
    text changes how it tokenizes (then the clauses are unknown, and only markers decide)."""
    starts: set[int] = set()
    total = 0
    for part in _CLAUSE_END.split(text):
        starts.add(total)
        total += len(tokenize(part))
    return frozenset(starts) if total == count else frozenset()


def set_aside(
    toks: Sequence[str],
    clauses: frozenset[int],
    role_at: Callable[[int], tuple[str, int]],
    known_names: frozenset[str],
) -> list[int]:
    """Positions of the tokens that are a story around the command, to be dropped before reading it."""
    w = story_words()
    n = len(toks)
    drop: list[int] = []
    command_seen = to_seen = False
    i = 0
    while i < n:
        role, size = role_at(i)
        if role in _COMMAND:
            command_seen = True
        start = _story_start(toks, i, role, known_names)
        after_name = command_seen and to_seen and _word_follows(toks, i + 1, role_at)
        if start is None and role == "for" and after_name:
            start = 1  # "send 500 to mama for food", "mpe Baraka soo tatu for food": "for" says why
        to_seen = to_seen or role == "to" or toks[i] in known_names
        if start is None:
            i += size
            continue
        end = _clause_end(toks, i + start, clauses, role_at, stop_at_command=not command_seen)
        # A story told first takes its whole clause ("mathe anahitaji doh ya soko, mtumie mama ..."): its
        # subject too. After the command, what the others need may be airtime ("anataka kununua credo").
        first = i if command_seen else max((b for b in clauses if b <= i), default=0)
        if (command_seen or _command_after(end, n, role_at)) and _harmless(
            toks, first, end, role_at, known_names, after=command_seen, skip=(i, i + start)
        ):
            drop.extend(range(first, end))
            i = end
            continue
        i += size
    drop.extend(_name_helpers(toks, set(drop), w))
    if _names_said_elsewhere(toks, drop, w):
        drop.extend(k for k, t in enumerate(toks) if t in w.pronouns)  # "send him 2,500, he's Otieno"
    return sorted(set(drop))


def _story_start(toks: Sequence[str], i: int, role: str, known_names: frozenset[str]) -> int | None:
    """If a story starts at toks[i], how many marker words come first; else None."""
    w = story_words()
    t = toks[i]
    if t in known_names:
        return None  # a saved name ("Ili Hassan") never starts a story
    hit = w.reasons.at(toks, i)
    if hit is not None:
        return hit[1]
    if not role and t not in known_names and w.verb_start.match(t) and not _past_or_negative(t):
        return 1  # "amenisaidia kubeba mizigo", "atanilipa kesho": a third person's verb
    return None


def _word_follows(toks: Sequence[str], i: int, role_at: Callable[[int], tuple[str, int]]) -> bool:
    """A word the vocabulary does not know, and not a number, at toks[i] (after fillers: "for her fare")."""
    while i < len(toks) and role_at(i)[0] == "filler":
        i += 1
    return i < len(toks) and not role_at(i)[0] and not is_number_word(vocabulary().numbers, toks[i])


def _past_or_negative(word: str) -> bool:
    v = vocabulary()
    if word in v.verb_exceptions:
        return False
    return bool(v.swahili_past.match(word) or v.swahili_negative.match(word)) or word in v.always_past


def _clause_end(
    toks: Sequence[str],
    i: int,
    clauses: frozenset[int],
    role_at: Callable[[int], tuple[str, int]],
    *,
    stop_at_command: bool,
) -> int:
    n = len(toks)
    j = i
    while j < n:
        if j > i and j in clauses:
            break
        role, size = role_at(j)
        if stop_at_command and role in _COMMAND:
            break
        j += size
    return min(j, n)


def _harmless(
    toks: Sequence[str],
    i: int,
    end: int,
    role_at: Callable[[int], tuple[str, int]],
    known_names: frozenset[str],
    *,
    after: bool,
    skip: tuple[int, int] = (0, 0),
) -> bool:
    """Does the story hold nothing the parser listens for (nor a saved contact's name: "for Brayo" may be
    who the money is for)?"""
    words = vocabulary().numbers
    allowed = _HARMLESS | {"unsupported"} if after else _HARMLESS
    j = i
    while j < end:
        if skip[0] <= j < skip[1]:
            j = skip[1]  # the marker itself ("it's for", "because")
            continue
        role, size = role_at(j)
        t = toks[j]
        if role not in allowed or is_number_word(words, t) or any(c.isdigit() for c in t) or t in known_names:
            return False
        if not role and (_past_or_negative(t) or t in vocabulary().past_tense):
            return False
        j += size
    return True


def _command_after(end: int, n: int, role_at: Callable[[int], tuple[str, int]]) -> bool:
    """A story told first ("my brother needs money for school, send him 2,500") needs its command after it."""
    return end < n and role_at(end)[0] in _COMMAND


def _name_helpers(toks: Sequence[str], dropped: set[int], w: StoryWords) -> list[int]:
    """ "he's Otieno in my contacts": the words around the name that say it is a saved name."""
    out: list[int] = []
    i = 0
    while i < len(toks):
        hit = w.intros.at(toks, i)
        if hit is not None and hit[1] == 1 and not any(w.places.at(toks, k) for k in range(i + 1, len(toks))):
            hit = None  # "he will", "she is waiting": not a name being introduced
        hit = hit or w.places.at(toks, i)
        if hit is not None and i not in dropped:
            out.extend(range(i, i + hit[1]))
            i += hit[1]
            continue
        i += 1
    return out


def _names_said_elsewhere(toks: Sequence[str], dropped: list[int], w: StoryWords) -> bool:
    return any(w.intros.at(toks, k) is not None for k in dropped)
