"""Wording data: both languages say the same things, amounts are said as Kenyans say them."""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Any

import pytest

from voice_server.dialogue.understanding import detect_language, is_no, is_yes, tokens
from voice_server.dialogue.wording import money, phrases, spoken_phone, swahili_number


def _leaves(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        out: dict[str, str] = {}
        for k, v in node.items():
            out.update(_leaves(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: str(node)}


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_english_and_swahili_have_the_same_sentences_with_the_same_placeholders() -> None:
    en, sw = _leaves(phrases("en")), _leaves(phrases("sw"))
    assert set(en) == set(sw)
    for key in en:
        assert _fields(en[key]) == _fields(sw[key]), key


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (15, "kumi na tano"),
        (500, "mia tano"),
        (1000, "elfu moja"),
        (1500, "elfu moja mia tano"),
        (2500, "elfu mbili mia tano"),
        (12000, "elfu kumi na mbili"),
        (100000, "laki moja"),
        (250000, "laki mbili na elfu hamsini"),
        (550, "mia tano na hamsini"),
    ],
)
def test_swahili_numbers(n: int, words: str) -> None:
    assert swahili_number(n) == words


def test_money() -> None:
    assert money("en", Decimal("1500")) == "KES 1,500"
    assert money("en", Decimal("7.50")) == "KES 7.50"
    assert money("sw", Decimal("1500")) == "shilingi elfu moja mia tano"
    assert money("sw", Decimal("6.66")) == "shilingi sita na senti sitini na sita"
    assert spoken_phone("254733444555") == "0733 444 555"


@pytest.mark.parametrize(
    "text", ["yes", "yes please", "ndio", "ndiyo", "sawa", "ok go ahead", "confirm", "poa"]
)
def test_yes(text: str) -> None:
    assert is_yes(tokens(text)) and not is_no(tokens(text))


@pytest.mark.parametrize(
    "text", ["no", "cancel", "hapana", "ghairi", "acha", "sitaki", "no cancel it", "acha tu"]
)
def test_bare_no(text: str) -> None:
    assert is_no(tokens(text)) and not is_yes(tokens(text))


@pytest.mark.parametrize("text", ["no, make it 700", "hapana, fanya mia saba", "yes send 500 to John"])
def test_neither_bare_yes_nor_bare_no(text: str) -> None:
    assert not is_yes(tokens(text)) and not is_no(tokens(text))


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("send 500 to mama", "en"),
        ("tuma elfu moja kwa Mama", "sw"),
        ("niko na doh ngapi", "sw"),
        ("nitumie mama 500 bob", "sw"),
        ("ndio", "sw"),
        ("yes", "en"),
    ],
)
def test_language(text: str, language: str) -> None:
    assert detect_language(text, "en" if language == "sw" else "sw") == language


def test_numbers_and_names_alone_keep_the_language() -> None:
    assert detect_language("500", "sw") == "sw"
    assert detect_language("John Kamau", "en") == "en"


def test_the_limit_said_is_the_ledger_s_limit() -> None:
    """The sentence a person hears when an amount is too big names the one limit the ledger enforces."""
    from ledger.limits import MAX_TRANSACTION_KES, kes

    refusals = {lang: _leaves(phrases(lang)) for lang in ("en", "sw")}
    en = next(v for k, v in refusals["en"].items() if k.endswith("amount_above_limit"))
    sw = next(v for k, v in refusals["sw"].items() if k.endswith("amount_above_limit"))
    assert f"KES {kes(MAX_TRANSACTION_KES)}" in en
    assert swahili_number(int(MAX_TRANSACTION_KES)) in sw
