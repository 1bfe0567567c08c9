"""Every utterance of our own corpora (tests/intents/corpus/*.yaml) read as meant; none confidently wrong."""

from __future__ import annotations

import pytest

from intents import parse
from tests.intents.corpora import Case, cases, contacts_index, judge

INDEX = contacts_index()
CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.corpus}:{c.text}" for c in CASES])
def test_corpus_item(case: Case) -> None:
    why, _ = judge(case.expect, parse(case.text, INDEX))
    assert not why, why


def test_the_corpora_cover_all_three_registers() -> None:
    """Each corpus has English and Swahili items (Sheng is marked by its own comments in the files)."""
    by_corpus: dict[str, set[str]] = {}
    for c in CASES:
        by_corpus.setdefault(c.corpus, set()).add(parse(c.text, INDEX).language)
    assert all(langs == {"en", "sw"} for langs in by_corpus.values()), by_corpus
