"""The driver asks `index_of` for every turn's contacts: the same list must give the same index (built once),
and any change to the list must be seen by the very next turn."""

from __future__ import annotations

from intents import parse
from intents.contacts import index_of

MAMA = {"id": "c1", "name": "Mary Wambui", "phone_number": "254733444555", "nickname": "Mama"}
OTIENO = {"id": "c2", "name": "Brian Otieno", "phone_number": "254722000111", "nickname": None}


def recipient(text: str, contacts: list[dict[str, object]]) -> str | None:
    result = parse(text, index_of(contacts))
    intent = result.intent
    return getattr(intent, "phone", None) if intent is not None else None


def test_the_same_list_read_again_is_indexed_once() -> None:
    first = index_of([dict(MAMA), dict(OTIENO)])
    again = index_of([dict(MAMA), dict(OTIENO)])  # equal content, new objects, as a new turn reads them
    assert again is first


def test_a_renamed_contact_is_found_by_its_new_name_at_once() -> None:
    assert recipient("send 500 to Otieno", [MAMA, OTIENO]) == "254722000111"
    renamed = {**OTIENO, "name": "Brian Kamau"}
    assert recipient("send 500 to Kamau", [MAMA, renamed]) == "254722000111"
    assert recipient("send 500 to Otieno", [MAMA, renamed]) is None


def test_a_changed_number_or_nickname_is_a_different_list() -> None:
    moved = {**MAMA, "phone_number": "254799888777"}
    assert recipient("tuma 500 kwa Mama", [moved]) == "254799888777"
    assert recipient("tuma 500 kwa Mama", [MAMA]) == "254733444555"
    nicknamed = {**OTIENO, "nickname": "Bro"}
    assert index_of([nicknamed]) is not index_of([OTIENO])
    assert recipient("send 500 to Bro", [nicknamed]) == "254722000111"


def test_a_deleted_contact_is_no_longer_found() -> None:
    assert recipient("send 500 to Otieno", [MAMA, OTIENO]) == "254722000111"
    assert recipient("send 500 to Otieno", [MAMA]) is None
