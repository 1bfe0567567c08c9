"""Answers to the assistant's question for one slot, with whatever people say before the value: "the till is
445566", "ni namba 445566", "it's 445566" are the till (issue 21). Read where the dialogue reads them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intents import ContactIndex
from intents.answers import value_of_answer
from tests.dialogue.helpers import WORLD, run, state_in
from tests.intents.test_properties import PROPS
from voice_server.dialogue.events import Utterance
from voice_server.dialogue.state import Propose
from voice_server.dialogue.understanding import read_slot

CONTACTS = ContactIndex(
    [
        {"id": "b", "name": "Baraka Mwangi", "phone_number": "0711222333"},
        {"id": "m", "name": "Mary Wambui", "phone_number": "0733444555", "nickname": "Mama"},
    ]
)
# What people say before the value, in English, Swahili and Sheng; {w} is the slot's own name.
LEADS = {
    "en": [
        "",
        "it's ",
        "it is ",
        "the {w} is ",
        "my {w} is ",
        "uhm it's ",
        "ok ",
        "yes it's ",
        "the number is ",
        "that's ",
        "ok so it's ",
        "please use ",
    ],
    "sw": [
        "ni ",
        "ni namba ",
        "namba ni ",
        "{w} ni ",
        "ndio ",
        "sawa ni ",
        "eeh ni ",
        "hii ni ",
        "andika ",
        "tafadhali weka ",
    ],
    "sheng": ["ni hii ", "ni hii hapa ", "iko ", "manze ni ", "ebu andika ", "oya ni ", "buda ni "],
}
# slot -> (its names, the value said, what must be heard)
SLOTS: dict[str, tuple[list[str], str, tuple[str, str] | Decimal]] = {
    "till": (["till", "till number", "namba ya till"], "445566", ("till", "445566")),
    "paybill": (["paybill", "business number", "namba ya biashara"], "247247", ("paybill", "247247")),
    "account": (["account", "account number", "akaunti"], "12345678", ("account", "12345678")),
    "agent": (["agent number", "wakala", "agent"], "123456", ("agent", "123456")),
    "store": (["store", "stoo", "store number"], "2", ("store", "2")),
    "amount": (["amount", "kiasi"], "500", Decimal(500)),
    "recipient": (["name", "jina"], "Baraka", ("phone", "254711222333")),
    "bank": (["bank", "benki"], "equity", ("bank_code", "68")),
}


@PROPS
@given(
    slot=st.sampled_from(sorted(SLOTS)),
    register=st.sampled_from(sorted(LEADS)),
    data=st.data(),
)
def test_any_lead_in_before_any_slots_value(slot: str, register: str, data: st.DataObject) -> None:
    names, value, want = SLOTS[slot]
    lead = data.draw(st.sampled_from(LEADS[register])).format(w=data.draw(st.sampled_from(names)))
    heard = read_slot(slot, lead + value, CONTACTS)
    if isinstance(want, Decimal):
        assert heard.amount == want, lead + value
    else:
        assert want in heard.fields, (lead + value, heard)


@pytest.mark.parametrize(
    "answer", ["the till is 445566", "ni namba 445566", "it's 445566", "till ni 44 55 66"]
)
def test_the_assistant_asked_for_the_till_and_the_answer_fills_it(answer: str) -> None:
    """A person asked for the till answers in their own words: the payment goes ahead with that till."""
    state, _ = run(state_in("idle"), Utterance("buy goods for 500"), world=WORLD)
    assert state.phase == "filling" and state.asked == "till"
    state, actions = run(state, Utterance(answer), world=WORLD)
    proposals = [a for a in actions if isinstance(a, Propose)]
    assert proposals and proposals[-1].fields.get("till") == "445566", (answer, actions)
    assert proposals[-1].amount == Decimal(500)


def test_lead_ins_alone_or_none_leave_the_answer_as_said() -> None:
    assert value_of_answer("it's") == "it's"  # nothing else said: no value to keep
    assert value_of_answer("445566") == "445566"
    assert value_of_answer("namba ya biashara ni 247247").startswith(
        "namba ya biashara"
    )  # the slot's name stays


def test_a_refusal_is_never_stripped_into_a_value() -> None:
    """ "no, 445566" is a correction the dialogue reads itself: "no" is not a lead-in."""
    assert value_of_answer("no 445566") == "no 445566"
