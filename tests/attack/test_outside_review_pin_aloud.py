"""Outside review: a PIN said aloud must leave nothing anywhere (spec: ledger.md, "Who may spend"). The
dialogue refuses it, but every turn is also kept (`voice_session_turns`, sql/0024) and read back by
`GET /v1/sessions/{id}/transcript`: a PIN said aloud must not be kept there either, in any form."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.attack.conftest import Client
from tests.server_conv.wsclient import Conv, mint

PIN = "7392"
SPOKEN = (
    "seven three nine two",
    "pin 7 3 9 2",
    "7392",
    "my pin is seven three nine two",
    "saba tatu tisa mbili",
)


def _holds_pin(text: str) -> bool:
    flat = text.lower().replace(" ", "")
    return PIN in flat or "seventhreeninetwo" in flat or "sabatatutisambili" in flat


async def test_a_pin_said_aloud_is_not_kept_in_the_session_s_turns(
    served: str, client: Client, make_user: Any, db: asyncpg.Pool
) -> None:
    user = await make_user(balance="9000.00", pin=PIN)
    session = await mint(served, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    await conv.say("my pin is seven three nine two")  # before anything: not a command
    await conv.say("send 2000 to 0712345678")
    asked = await conv.say("yes")
    assert asked.summary["asked"] == "pin", asked.events
    for spoken in SPOKEN:
        turn = await conv.say(spoken)
        assert turn.summary["asked"] == "pin" and not turn.calls("show_proposal"), (spoken, turn.summary)
    await conv.close()

    reply = await client.call("GET", f"/v1/sessions/{session['session_id']}/transcript", user)
    assert reply.status == 200, reply.body
    heard = [t["heard"] for t in reply.body["turns"] if t["input"] == "utterance"]
    assert len(heard) == 3 + len(SPOKEN), heard  # every turn is there ...
    assert not [h for h in heard if h and _holds_pin(h)], heard  # ... but no PIN said aloud
    kept = await db.fetch(
        "SELECT heard FROM voice_session_turns WHERE session_id = $1 AND heard IS NOT NULL",
        session["session_id"],
    )
    assert not [r["heard"] for r in kept if _holds_pin(r["heard"])]
