"""Bugs found by a second, independent red team (sentence-initial amounts, questions, punctuation,
Sheng multipliers said first, spaced digits, "business no.", money coming in), pinned with their fix.

Contacts include names with an apostrophe, a hyphen and an accent.
`confident` True: must be actionable with confidence >= 80; False: must never be confident.
"""

from __future__ import annotations

from typing import Any

import pytest

from intents import ContactIndex, parse

CONTACTS: list[dict[str, Any]] = [
    {"id": "c01", "name": "John Doe", "phone_number": "254712345678", "nickname": None},
    {"id": "c02", "name": "John Kamau", "phone_number": "254722111222", "nickname": "JK"},
    {"id": "c03", "name": "Mary Wambui", "phone_number": "254733444555", "nickname": "Mama"},
    {"id": "c04", "name": "Brian Otieno", "phone_number": "254701234567", "nickname": "Brayo"},
    {"id": "c08", "name": "Wanjiku O'Brien", "phone_number": "254723000111", "nickname": None},
    {"id": "c09", "name": "Mary-Anne Chebet", "phone_number": "254724000222", "nickname": "Chebby"},
    {"id": "c10", "name": "Renée Atieno", "phone_number": "254725000333", "nickname": None},
]
INDEX = ContactIndex(CONTACTS)

CASES: list[tuple[str, dict[str, Any], bool]] = [
    # A Sheng multiplier said first ("thao tano", "mbao tatu") after a business number or an account was
    # read as multiplying that number: "till 832909 thao tano" became 832,909,005 shillings.
    (
        "lipa till namba 832909 thao tano",
        {"type": "buy_goods_till", "amount": "5000.00", "till": "832909"},
        True,
    ),
    (
        "nunua till 5 6 7 8 9 0 thao mbili",
        {"type": "buy_goods_till", "amount": "2000.00", "till": "567890"},
        True,
    ),
    (
        "paybill 247247 a/c 12345678 mbao tatu",
        {"type": "paybill", "amount": "60.00", "paybill": "247247", "account": "12345678"},
        True,
    ),
    (
        "paybill 247247 a/c a b c one two three mbao tatu",
        {"type": "paybill", "amount": "60.00", "paybill": "247247", "account": "ABC123"},
        True,
    ),
    ("send 500 to mama thao mbili", {"type": "send_phone", "contact_id": "c03"}, False),
    # A written amount after a spelled-out account was glued onto the account.
    (
        "paybill 888880 account a b c one two three 1500 shillings",
        {"type": "paybill", "amount": "1500.00", "paybill": "888880", "account": "ABC123"},
        True,
    ),
    # Without a currency word the 500 may also end the account (groups join, spec "What people really
    # say"): the likely reading, but asked.
    (
        "paybill 888880 a/c a b c one two three 500",
        {"type": "paybill", "amount": "500.00", "paybill": "888880", "account": "ABC123"},
        False,
    ),
    (
        "paybill 888880 account ABC123 500 bob",
        {"type": "paybill", "amount": "500.00", "paybill": "888880", "account": "ABC123"},
        True,
    ),
    # Spaced single digits then "1 500": till 5678901 and 500, or till 567890 and 1,500? Ask.
    ("nunua till 5 6 7 8 9 0 1 500", {"type": "buy_goods_till"}, False),
    ("lipa bili namba 888880 akaunti namba a b c one two three 1 500", {"type": "paybill"}, False),
    ("send 0 7 1 2 3 4 5 6 7 8 1 500", {"type": "send_phone"}, False),
    ("send 0 7 1 2 3 4 5 6 7 8 100 bob", {"type": "send_phone", "amount": "100.00"}, True),
    # "business no." is a paybill.
    (
        "pay 1,500 to business no. 888880, a/c 12345678",
        {"type": "paybill", "amount": "1500.00", "paybill": "888880", "account": "12345678"},
        True,
    ),
    (
        "pay 10K to business no. 4 0 0 2 0 0, a/c a b c one two three",
        {"type": "paybill", "amount": "10000.00", "paybill": "400200", "account": "ABC123"},
        True,
    ),
    ("till num 832909 pay 300", {"type": "buy_goods_till", "amount": "300.00", "till": "832909"}, True),
    # Money to the speaker ("sent me", "send me") is not a payment to make.
    # (Since the spec's "What people really say", a story of the past is not a command at all: type null.)
    ("John Doe sent me 500", {"type": None}, False),
    ("Brayo send me 500", {"type": "send_phone"}, False),
    ("show me my balance", {"type": "check_balance"}, True),
    # A past-tense verb after whoever did it tells a story; "sent" alone is still a slip for "send".
    ("I sent 500 to mama", {"type": None}, False),
    ("mama sent 500", {"type": None}, False),
    ("Brayo paid 300 to till 832909", {"type": None}, False),
    ("sent 400 to brayo", {"type": "send_phone", "amount": "400.00", "contact_id": "c04"}, True),
    ("please sent 400 to brayo", {"type": "send_phone", "amount": "400.00", "contact_id": "c04"}, True),
    ("send 50% to mama", {"type": "send_phone"}, False),
    # "1.500" was 1.50 shillings, confidently: three decimal places are not cents (it may be 1,500).
    ("send 1.500 to mama", {"type": "send_phone", "errors": ["invalid_number"]}, False),
    ("pay till 832909 ksh 2.500", {"type": "buy_goods_till", "errors": ["invalid_number"]}, False),
    ("send 99.50 to mama", {"type": "send_phone", "amount": "99.50"}, True),
    ("send 1.5k to mama", {"type": "send_phone", "amount": "1500.00"}, True),
    # "withdraw from KCB" without M-Pesa may mean cash at the bank: ask; with M-Pesa it is clear.
    ("withdraw 5000 from KCB", {"type": "bank_to_mpesa", "bank_code": "01"}, False),
    (
        "withdraw 5000 from KCB to mpesa",
        {"type": "bank_to_mpesa", "amount": "5000.00", "bank_code": "01"},
        True,
    ),
    ("move 5000 from KCB", {"type": "bank_to_mpesa", "amount": "5000.00", "bank_code": "01"}, True),
    # A foreign currency sign was dropped: "$500" became 500 shillings.
    ("send $500 to mama", {"type": "send_phone"}, False),
    ("send €500 to Brayo", {"type": "send_phone"}, False),
    # Styles that already worked and must keep working.
    ("500 to mama", {"type": "send_phone", "amount": "500.00", "contact_id": "c03"}, True),
    ("elfu mbili kwa JK tafadhali", {"type": "send_phone", "amount": "2000.00", "contact_id": "c02"}, True),
    ("SEND KSH1,500.00 TO BRAYO!", {"type": "send_phone", "amount": "1500.00", "contact_id": "c04"}, True),
    ("send 700 to Wanjiku O'Brien", {"type": "send_phone", "amount": "700.00", "contact_id": "c08"}, True),
    ("tuma 700 kwa Mary-Anne", {"type": "send_phone", "amount": "700.00", "contact_id": "c09"}, True),
    ("send 700 to Renee", {"type": "send_phone", "amount": "700.00", "contact_id": "c10"}, True),
    (
        "send 300 to +254-712-345-678",
        {"type": "send_phone", "amount": "300.00", "phone": "254712345678", "contact_id": "c01"},
        True,
    ),
    ("send 300 to (0712) 345 678", {"type": "send_phone", "phone": "254712345678"}, True),
    ("I am 25 years old", {}, False),
    ("call me at 0712345678", {}, False),
]


@pytest.mark.parametrize(("text", "expect", "confident"), CASES, ids=[c[0] for c in CASES])
def test_redteam2(text: str, expect: dict[str, Any], confident: bool) -> None:
    r = parse(text, INDEX)
    got = r.model_dump(mode="json")
    for key, want in expect.items():
        assert got[key] == want, (key, got)
    if confident:
        assert r.confidence >= 80, got
        assert r.actionable or r.type in ("check_balance", "transaction_history"), got
    else:
        assert not r.confident, got
