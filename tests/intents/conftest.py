"""Shared fixtures for the intent parser tests: the sample corpus contacts plus a few hard ones."""

from __future__ import annotations

from typing import Any

import pytest

from intents import ContactIndex

SAMPLE_CONTACTS: list[dict[str, Any]] = [
    {"id": "c01", "name": "John Doe", "phone_number": "254712345678", "nickname": None},
    {"id": "c02", "name": "John Kamau", "phone_number": "254722111222", "nickname": "JK"},
    {"id": "c03", "name": "Mary Wambui", "phone_number": "254733444555", "nickname": "Mama"},
    {"id": "c04", "name": "Brian Otieno", "phone_number": "254701234567", "nickname": "Brayo"},
    {"id": "c05", "name": "Grace Akinyi", "phone_number": "254110987654", "nickname": None},
    {"id": "c06", "name": "Peter Njoroge", "phone_number": "254798765432", "nickname": "Pete"},
    {"id": "c07", "name": "Achieng Odhiambo", "phone_number": "254745678901", "nickname": None},
]

EXTRA_CONTACTS: list[dict[str, Any]] = [
    {"id": "c08", "name": "Wanjiku Kariuki", "phone_number": "+254 723 456 789", "nickname": "Shiro"},
    {"id": "c09", "name": "Kevin Mutua", "phone_number": "0734567890", "nickname": None},
    {"id": "c10", "name": "Fatuma Hassan", "phone_number": "0757123456", "nickname": "Mama Fatu"},
    {"id": "c11", "name": "Robert'); DROP TABLE contacts;--", "phone_number": "0711000111", "nickname": None},
    {"id": "c12", "name": "Zoë Njeri", "phone_number": "0768111222", "nickname": "Zozo"},
    {"id": "c13", "name": "Kevin Otieno", "phone_number": "0769000111", "nickname": None},
]


@pytest.fixture(scope="session")
def sample_contacts() -> list[dict[str, Any]]:
    return SAMPLE_CONTACTS


@pytest.fixture(scope="session")
def sample_index() -> ContactIndex:
    return ContactIndex(SAMPLE_CONTACTS)


@pytest.fixture(scope="session")
def index() -> ContactIndex:
    return ContactIndex(SAMPLE_CONTACTS + EXTRA_CONTACTS)
