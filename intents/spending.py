"""Questions about money spent (`spending_summary`) and about one past payment (`transaction_history`).

"How much did I spend this month", "nimetumia pesa ngapi wiki hii", "what did I pay KPLC last month" ask for a
total over a period; "did my 500 to JK go through?" names an amount, so it asks about one payment. The words
are data (`data/spending.yaml`); this module only says which question, if any, was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from intents.data_files import load_yaml
from intents.models import PERIODS
from intents.numbers import is_number_word
from intents.phrases import Phrases
from intents.vocabulary import vocabulary

# The period when none is said (the spec's default).
DEFAULT_PERIOD = "this_month"
# Roles of the verbs that move money: with "how much" and a past mark they ask what was spent.
_MONEY_VERBS = frozenset({"send", "pay", "buy_goods", "withdraw"})


@dataclass(frozen=True)
class SpendingWords:
    periods: Phrases
    how_much: Phrases
    spend: Phrases
    what: Phrases
    past: Phrases
    cost: Phrases
    status: Phrases
    status_questions: frozenset[str]


@cache
def spending_words() -> SpendingWords:
    raw = load_yaml("spending.yaml")
    label: dict[str, str] = {}
    for period, phrases in raw["periods"].items():
        if period not in PERIODS:
            raise ValueError(f"spending.yaml: unknown period {period!r}")
        for p in phrases:
            label[" ".join(str(p).lower().split())] = period
    return SpendingWords(
        periods=Phrases(label, lambda p: label[p]),
        how_much=Phrases(raw["how_much"]),
        spend=Phrases(raw["spend_words"]),
        what=Phrases(raw["what_questions"]),
        past=Phrases(raw["past_markers"]),
        cost=Phrases(raw["cost_words"]),
        status=Phrases(raw["status_words"]),
        status_questions=frozenset(str(w).lower() for w in raw["status_questions"]),
    )


def periods_said(toks: Sequence[str]) -> list[str]:
    """The periods named, in order, without repeats ("this week" -> ["this_week"])."""
    return list(dict.fromkeys(spending_words().periods.find(toks)))


def period_words(toks: Sequence[str]) -> frozenset[str]:
    """The words of the periods said ("since", "january"): part of the question, never a name."""
    periods = spending_words().periods
    out: set[str] = set()
    i = 0
    while i < len(toks):
        hit = periods.at(toks, i)
        step = hit[1] if hit else 1
        if hit:
            out.update(toks[i : i + step])
        i += step
    return frozenset(out)


def _told(word: str) -> bool:
    v = vocabulary()
    return word not in v.verb_exceptions and bool(v.swahili_past.match(word))


def _money_verb(word: str) -> bool:
    """A verb that moves money, in any tense ("send", "paid", "nimetuma", "nilimlipa", "nimespend")."""
    v = vocabulary()
    past = word in v.past_tense and word not in v.have_words  # "how much cash I got" is the balance
    return v.roles_of_word.get(word) in _MONEY_VERBS or past or _told(word)


def asks_spending(toks: Sequence[str], *, amount: bool, recipient: bool) -> bool:
    """Is this a question about how much was spent? Never when an amount is said or a price is asked.

    "how much" with a spending word ("spent", "matumizi"), or with a money verb in the past ("how much did I
    send", "nimetuma ngapi"); or "what did I pay" naming a recipient or a period ("what did I pay KPLC").
    """
    w = spending_words()
    toks = list(toks)
    if amount or toks in w.cost:
        return False
    spend = toks in w.spend
    verb = any(_money_verb(t) for t in toks)
    v = vocabulary()
    past = toks in w.past or any((t in v.past_tense and t not in v.have_words) or _told(t) for t in toks)
    if toks in w.how_much and (spend or (verb and past)):
        return True
    return toks in w.what and (spend or verb) and (recipient or bool(periods_said(toks)))


def asks_about_payment(toks: Sequence[str], *, amount: bool) -> bool:
    """ "did my 500 to JK go through?", "je 500 yangu imefika kwa mama?", "did I send 500 to mama?": one past
    payment, named by its amount, asked about. That is the history, never a new payment and never a price."""
    w = spending_words()
    toks = list(toks)
    if not amount or toks in w.cost:
        return False
    v = vocabulary()
    first = next((t for t in toks if v.roles_of_word.get(t) != "filler"), "")
    if first in w.status_questions and any(_money_verb(t) for t in toks):
        return True  # "did I send 500 to mama?", "je nilimtumia mama 500?": did that payment happen
    if toks not in w.status:
        return False
    if any(_told(t) for t in toks):
        return True  # "nilituma 500 kwa mama, imefika?"
    words = vocabulary().numbers
    for t in toks:
        if t in w.status_questions:
            return True  # the question comes before the amount: "did my 500 ..."
        if is_number_word(words, t):
            return False
    return False


def is_spending_word(word: str) -> bool:
    """A word of the question itself ("nimetumia", "spent"), never part of a name."""
    return [word] in spending_words().spend or _money_verb(word)
