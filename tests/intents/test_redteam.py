"""Bugs found by red-teaming the parser with generated utterances, pinned with their fixed behaviour.

Contacts include names that collide with vocabulary ("Tatu", "Hope", "Boss") and shared first/last names.
`confident` True: must be actionable with confidence >= 80; False: must never be confident.
"""

from __future__ import annotations

from typing import Any

import pytest

from intents import ContactIndex, parse
from intents.models import TXN_TYPES

CONTACTS: list[dict[str, Any]] = [
    {"id": "c01", "name": "John Doe", "phone_number": "254712345678", "nickname": None},
    {"id": "c02", "name": "John Kamau", "phone_number": "254722111222", "nickname": "JK"},
    {"id": "c03", "name": "Mary Wambui", "phone_number": "254733444555", "nickname": "Mama"},
    {"id": "c08", "name": "Tatu Mwangi", "phone_number": "254723456789", "nickname": None},
    {"id": "c12", "name": "Hope Nyambura", "phone_number": "254717444555", "nickname": None},
    {"id": "c16", "name": "David Ochieng", "phone_number": "254721888999", "nickname": "Boss"},
    {"id": "c17", "name": "Esther Wairimu", "phone_number": "254724999000", "nickname": "Shosh"},
    {"id": "c18", "name": "Kevin Mutua", "phone_number": "254111222333", "nickname": None},
    {"id": "c21", "name": "Kevin Omondi", "phone_number": "254726321321", "nickname": "Kev"},
    {"id": "c22", "name": "Cynthia Chepkoech", "phone_number": "254727654654", "nickname": "Cyn"},
]
INDEX = ContactIndex(CONTACTS)

CASES: list[tuple[str, dict[str, Any], bool]] = [
    # Swahili/Sheng fillers were unknown: next to a name they broke the match, elsewhere they cost trust.
    ("tuma pesa kwa shosh basi", {"type": "send_phone", "contact_id": "c17", "missing": ["amount"]}, False),
    (
        "Um transfer ksh2200 to Chepkoech, basi",
        {"type": "send_phone", "amount": "2200.00", "contact_id": "c22"},
        True,
    ),
    (
        "eh, pay 500 to till 832909 sasa hivi",
        {"type": "buy_goods_till", "amount": "500.00", "till": "832909"},
        True,
    ),
    ("aki ebu send 300 to hope", {"type": "send_phone", "amount": "300.00", "contact_id": "c12"}, True),
    # Currency glued to a decimal amount was split at the point: "ksh78.99" read as 78 99 = 7899.
    (
        "tuma ksh78.99 kwa benki ya equity account 72780481",
        {"type": "mpesa_to_bank", "amount": "78.99", "bank_code": "68", "account": "72780481"},
        True,
    ),
    ("send ksh1,250.50 to mama", {"type": "send_phone", "amount": "1250.50", "contact_id": "c03"}, True),
    # A phone written in two groups ("0712 345678") was an invalid phone.
    ("send 500 to 0712 345678", {"type": "send_phone", "amount": "500.00", "phone": "254712345678"}, True),
    (
        "Kwa 0112 545046 hamisha laki moja na elfu nane",
        {"amount": "108000.00", "phone": "254112545046"},
        True,
    ),
    ("send 300 to +254 712345678", {"amount": "300.00", "phone": "254712345678", "contact_id": "c01"}, True),
    # "25410 1" may also be till 254101 (numbers spoken in groups join): ask.
    ("pay till 25410 1", {"type": "buy_goods_till", "till": "25410", "amount": "1.00"}, False),
    # A phone followed by a Sheng amount ("0715487856 thao arobaini") was read as phone x 1000.
    ("give 0715487856 thao arobaini na tisa", {"amount": "49000.00", "phone": "254715487856"}, True),
    (
        "lipa pochi ya +254732942724 thao thelathini na tatu",
        {"type": "buy_goods_pochi", "amount": "33000.00", "phone": "254732942724"},
        True,
    ),
    # Spoken account letters before "k" stopped the account ("r w k four five" -> "R").
    (
        "paybill 7153294 account r w k four five amount 500",
        {"type": "paybill", "paybill": "7153294", "account": "RWK45", "amount": "500.00"},
        True,
    ),
    (
        "lipa bili 753702 account s k h six two six kiasi KSh 202",
        {"type": "paybill", "account": "SKH626", "amount": "202.00"},
        True,
    ),
    # An account that starts with letters looking like a currency ("SH83790") was lost.
    (
        "pay 83/- to pay bill number 277912 akaunti SH83790",
        {"type": "paybill", "paybill": "277912", "account": "SH83790", "amount": "83.00"},
        True,
    ),
    # An amount in words after "till" became a (bad) till number instead of the amount.
    (
        "lipa till elfu moja mia nane",
        {"type": "buy_goods_till", "amount": "1800.00", "missing": ["till"]},
        False,
    ),
    # No verb, an amount and an ambiguous name: a send to confirm, not "not a command".
    ("157,000 to Kevin", {"type": "send_phone", "amount": "157000.00", "missing": ["recipient"]}, False),
    ("KES 970 to john", {"type": "send_phone", "amount": "970.00", "missing": ["recipient"]}, False),
    # Hyphenated number words ("twenty-five") were one unknown word.
    ("send thirty-four thousand five hundred to jk", {"amount": "34500.00", "contact_id": "c02"}, True),
    ("tuma twenty-five thousand kwa hope", {"amount": "25000.00", "contact_id": "c12"}, True),
    ("send 500 to co-op account 1234567", {"type": "mpesa_to_bank", "bank_code": "11"}, True),
    # A contact name that is a number word, said with its surname, was read as the amount ("Tatu" = 3).
    ("tuma tatu mwangi 1,700", {"amount": "1700.00", "contact_id": "c08"}, True),
    ("mtumie Tatu Mwangi mia sita na kumi tisa", {"amount": "619.00", "contact_id": "c08"}, True),
    # ... but right after a number it may be either: 1,000 to Tatu Mwangi or 3,000 to Mwangi. Ask.
    ("tuma elfu tatu mwangi", {"type": "send_phone", "contact_id": "c08"}, False),
    # "too" is a mis-heard "two" too (and a slip is always confirmed).
    ("send too hundred to Kev", {"amount": "200.00", "contact_id": "c21"}, False),
    # "send me my statement" is a query, not a payment with everything missing.
    ("nitumie statement", {"type": "transaction_history"}, False),
    # A command being called off is never acted on (and, since the spec's "What people really say", it is
    # not a command at all: type null).
    ("don't send 500 to mama", {"type": None, "amount": None}, False),
    ("usitume 500 kwa mama", {"type": None}, False),
    # An account before "a thousand" swallowed the article: account "KFU4637A" (confidently wrong).
    (
        "pay bill 626888 Account No. KFU4637 a thousand three hundred",
        {"type": "paybill", "account": "KFU4637", "amount": "1300.00"},
        True,
    ),
    # A comma right after a decimal amount dropped the cents ("36,010.25, asante" -> 36010 and 25).
    ("till 3633011 lipa Sh. 36,010.25, asante", {"till": "3633011", "amount": "36010.25"}, True),
    # A 0-led account after a bank name was taken for a phone.
    (
        "weka 176,810 kwa akaunti yangu ya NCBA namba 086518686",
        {"type": "mpesa_to_bank", "bank_code": "07", "account": "086518686", "amount": "176810.00"},
        True,
    ),
    # A written amount after "till" is the amount ("12k" is never a till).
    ("lipa till 12k", {"type": "buy_goods_till", "amount": "12000.00", "missing": ["till"]}, False),
    # An account marker as the last word crashed once (index past the end).
    ("pay bill 888880 500 account", {"type": "paybill", "paybill": "888880", "missing": ["account"]}, False),
    ("lipa bili 888880 mia tano akaunti yangu", {"type": "paybill", "missing": ["account"]}, False),
    # A bank whose name starts with a letter ("I and M") after "akaunti" was read as the account "I".
    (
        "weka 8.9K kwa akaunti yangu ya I and M namba 75920607581",
        {"type": "mpesa_to_bank", "bank_code": "57", "account": "75920607581", "amount": "8900.00"},
        True,
    ),
]


@pytest.mark.parametrize(("text", "want", "confident"), CASES, ids=[c[0] for c in CASES])
def test_redteam_utterances(text: str, want: dict[str, Any], confident: bool) -> None:
    r = parse(text, INDEX).model_dump(mode="json")
    assert {k: r[k] for k in want if k != "missing"} == {k: v for k, v in want.items() if k != "missing"}, r
    assert set(r["missing"]) == set(want.get("missing", [])), r
    is_confident = r["type"] in TXN_TYPES and not r["missing"] and not r["errors"] and r["confidence"] >= 80
    assert is_confident == confident, r
