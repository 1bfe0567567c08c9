"""An answer to the assistant's question for one slot, with the words people put before the value removed
("the till is 445566", "ni namba 445566", "it's 445566" are all 445566). The words are data
(`data/answers.yaml`); the dialogue reads what is left as the slot's value.
"""

from __future__ import annotations

from functools import cache

from intents.data_files import load_yaml
from intents.phrases import Phrases
from intents.tokens import tokenize_words
from intents.utterance import phrase_at

# Roles of the phrases that name a slot ("namba ya till", "business number"): never stripped as a lead-in.
_SLOT_WORDS = frozenset({"till", "paybill", "account", "agent", "store", "bank", "pochi", "amount"})


@cache
def _lead_ins() -> Phrases:
    return Phrases(str(w) for w in load_yaml("answers.yaml")["lead_ins"])


def value_of_answer(answer: str) -> str:
    """The answer without the words said before its value; unchanged when none were said (or when nothing
    else was said: "it's" alone is no value)."""
    toks = tokenize_words(answer)
    lead_ins = _lead_ins()
    i = 0
    while i < len(toks):
        hit = lead_ins.at(toks, i)
        if hit is None or phrase_at(toks, i)[0] in _SLOT_WORDS:
            break  # "namba ya biashara ni 247247": the slot's own name stays, the prompt reads it
        i += hit[1]
    if i == 0 or i == len(toks):
        return answer
    return " ".join(toks[i:])
