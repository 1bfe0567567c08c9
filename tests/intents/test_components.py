"""The parts under the parser: typed intents, banks, phones, contacts and the confidence model."""

from __future__ import annotations

from decimal import Decimal

import pytest

from intents import (
    ContactIndex,
    MpesaToBank,
    Paybill,
    SendPhone,
    Withdraw,
    bank_paybill,
    parse,
)
from intents.banks import banks
from intents.phones import normalise_phone


def test_intent_is_typed_per_transaction(index: ContactIndex) -> None:
    r = parse("send 1,500 to mama", index)
    assert isinstance(r.intent, SendPhone)
    assert r.intent.amount == Decimal("1500") and r.intent.phone == "254733444555"
    assert isinstance(parse("paybill 400200 acc 998877 ksh 650", index).intent, Paybill)
    assert isinstance(parse("withdraw 2000 agent 123456 store 2", index).intent, Withdraw)
    m2b = parse("send 5000 to my Equity account 0123456789", index).intent
    assert isinstance(m2b, MpesaToBank) and m2b.bank_code == "68"


def test_no_intent_unless_actionable(index: ContactIndex) -> None:
    assert parse("send 100 to John", index).intent is None
    assert parse("send 300000 to mama", index).intent is None


def test_json_has_empty_strings_not_nulls(index: ContactIndex) -> None:
    out = parse("check balance", index).model_dump(mode="json")
    assert out["amount"] is None and out["contact_id"] is None
    assert all(out[k] == "" for k in ("phone", "till", "paybill", "account", "agent", "store", "bank_code"))
    assert "intent" not in out


@pytest.mark.parametrize(
    ("code", "paybill"),
    [
        ("68", "247247"),
        ("01", "522522"),
        ("11", "400200"),
        ("07", "880100"),
        ("03", "303030"),
        ("31", "600100"),
        ("70", "222111"),
        ("57", "542542"),
        ("63", "516600"),
        ("02", "329329"),
        ("99", None),
    ],
)
def test_bank_paybills_come_from_the_directory(code: str, paybill: str | None) -> None:
    assert bank_paybill(code) == paybill


def test_every_bank_name_in_the_directory_is_understood(index: ContactIndex) -> None:
    for bank in banks().values():
        for name in bank.names:
            r = parse(f"send 1000 to {name} account 12345", index)
            assert r.bank_code == bank.code, name


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("0712345678", "254712345678"),
        ("+254 712 345 678", "254712345678"),
        ("254110987654", "254110987654"),
        ("712345678", "254712345678"),
        ("0812345678", None),
        ("0202222222", None),
        ("", None),
        ("abc", None),
    ],
)
def test_phone_normalisation(raw: str, want: str | None) -> None:
    assert normalise_phone(raw) == want


def test_asr_confidence_scales_the_score(index: ContactIndex) -> None:
    clean = parse("send 100 to mama", index).confidence
    assert clean >= 80
    assert parse("send 100 to mama", index, asr_confidence=0.95).confidence < clean
    assert parse("send 100 to mama", index, asr_confidence=0.6).confidence < 80
    assert parse("send 100 to mama", index, asr_confidence=60).confidence < 80  # a percentage works too


def test_contacts_may_be_models_dicts_or_an_index() -> None:
    contacts = [{"id": "a", "name": "Amina Said", "phone_number": "0711222333", "nickname": None}]
    assert parse("send 100 to amina", contacts).contact_id == "a"
    assert parse("send 100 to amina", ContactIndex(contacts)).contact_id == "a"


def test_odd_contact_names_never_crash() -> None:
    contacts: list[dict[str, str | None]] = [
        {"id": "sql", "name": "x'); DROP TABLE users;--", "phone_number": "0711000111", "nickname": None},
        {"id": "emoji", "name": "💸💸", "phone_number": "0711000222", "nickname": "🙂"},
        {"id": "empty", "name": "", "phone_number": "", "nickname": ""},
        {"id": "boss", "name": "Boss Man", "phone_number": "0711000333", "nickname": "Boss"},
        {"id": "badphone", "name": "Nobody Here", "phone_number": "12", "nickname": None},
    ]
    index = ContactIndex(contacts)
    assert parse("send 100 to boss", index).contact_id == "boss"
    assert parse("send 100 to 💸💸", index).type == "send_phone"
    r = parse("send 100 to nobody here", index)
    assert r.contact_id == "badphone" and "invalid_phone" in r.errors and not r.confident


def test_phone_of_a_contact_sets_contact_id(index: ContactIndex) -> None:
    r = parse("send 100 to +254 723 456 789", index)
    assert r.contact_id == "c08" and r.candidates == []


def test_name_and_number_that_disagree_are_not_confident(index: ContactIndex) -> None:
    assert not parse("send 100 to pete 0712345678", index).confident
    assert parse("send 100 to John Doe 0712345678", index).confident


def test_a_contact_called_like_a_number() -> None:
    contacts = [{"id": "t", "name": "Tatu Wanjiru", "phone_number": "0711000444", "nickname": None}]
    r = parse("tuma 500 kwa Tatu", contacts)
    assert r.contact_id == "t" and r.amount == Decimal(500)
    assert parse("tuma tatu kwa Tatu Wanjiru", contacts).amount == Decimal(3)


def test_biller_numbers_are_business_numbers_or_unknown() -> None:
    """A biller's number, when the data file gives one, is a valid Pay Bill number; unknown ones ask."""
    from intents.billers import billers

    for b in billers():
        for number in (b.paybill, *(v.paybill for v in b.variants)):
            assert number is None or (number.isdigit() and 5 <= len(number) <= 7), b
    kplc = next(b for b in billers() if b.name == "Kenya Power")
    assert kplc.paybill_for(["buy", "kplc", "tokens"]) == "888880"
    assert kplc.paybill_for(["pay", "kplc", "postpaid"]) == "888888"
    assert kplc.paybill_for(["pay", "my", "kplc", "bill"]) is None  # prepaid or postpaid? ask


def test_short_forms_are_never_vocabulary_words() -> None:
    """A short form that is also a vocabulary word ("bob" = shillings) would never be heard as a name."""
    from intents.contacts import short_forms
    from intents.vocabulary import vocabulary

    known = set(vocabulary().roles_of_word)
    clashes = {f for forms in short_forms().values() for f in forms if f in known}
    assert not clashes


def test_short_form_matches_are_never_certain() -> None:
    index = ContactIndex(
        [
            {"id": "k", "name": "Kevin Otieno", "phone_number": "0711000001", "nickname": None},
            {"id": "b1", "name": "Brian Omondi", "phone_number": "0711000002", "nickname": None},
            {"id": "b2", "name": "Brian Wekesa", "phone_number": "0711000003", "nickname": None},
        ]
    )
    assert [m.index for m in index.match_short("kevo")] == [0]
    assert all(m.short and m.score < 90 for m in index.match_short("kevo"))
    assert [m.index for m in index.match_short("brayo")] == [1, 2]
    assert index.match_short("gabu") == []
    assert index.match("kevo") == []  # the exact matcher never guesses from a short form


def test_language_of_counts_words_of_each_language() -> None:
    from intents.language import language_of

    assert language_of(["tuma", "500", "kwa", "mama"]) == "sw"
    assert language_of(["send", "500", "to", "mama"]) == "en"
    assert language_of(["usitume", "500"]) == "sw"  # a Swahili verb form, not in any list
    assert language_of(["500"]) == "en"
