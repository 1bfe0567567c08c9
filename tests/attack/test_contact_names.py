"""Names as people write them come back as written: SQL and quotes are just text, and the joiners that
emoji and Indic scripts are built with survive; what would disguise a name (direction overrides, NUL, other
control characters) does not."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Client

VERBATIM = [
    "Robert'); DROP TABLE contacts;--",
    "Mama $1 %s {name} \\N",
    "Familia 👨\u200d👩\u200d👧",  # one emoji: three people joined by ZERO WIDTH JOINER
    "क्\u200dष",  # Devanagari with a joiner
    "میں\u200cنے",  # Urdu with ZERO WIDTH NON-JOINER
    "Wanjiru Ñandú Ōtieno",
]


@pytest.mark.parametrize("name", VERBATIM)
async def test_a_name_comes_back_as_written(client: Client, make_user: Any, name: str) -> None:
    user = await make_user()
    r = await client.call("POST", "/v1/contacts", user, json_body={"name": name, "phone": "0712000111"})
    assert (r.status, r.body["name"]) == (201, name)
    listed = (await client.call("GET", "/v1/contacts", user)).body["items"]
    assert [c["name"] for c in listed] == [name]


@pytest.mark.parametrize(
    ("name", "stored"),
    [("Mama\u202eamaM", "Mama amaM"), ("Baba\x00\x07\x1b[31m", "Baba [31m"), ("\u200d", None)],
)
async def test_disguising_characters_are_dropped(
    client: Client, make_user: Any, name: str, stored: str | None
) -> None:
    user = await make_user()
    r = await client.call("POST", "/v1/contacts", user, json_body={"name": name, "phone": "0712000112"})
    if stored is None:
        assert (r.status, r.body["error"]["code"]) == (400, "invalid_text")
    else:
        assert (r.status, r.body["name"]) == (201, stored)
