"""Outside review: a PIN said aloud must be kept nowhere (spec: ledger.md, "Who may spend"), and ElevenLabs'
post-call webhook brings back the whole conversation as ElevenLabs heard it. A person who said "my pin is
seven three nine two" to the agent had it stored in `voice_session_transcripts` (transcript and payload)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.attack.conftest import JWT_SECRET
from tests.server_conv.test_webhook import payload, sign
from tests.server_conv.wsclient import mint
from tests.serving import ServeProcess

SECRET = "wsec_outside_review_0123456789abcdef0123"
_TRACE = r"\m7\s*3\s*9\s*2\M|seven\s+three\s+nine\s+two|saba\s+tatu\s+tisa\s+mbili"


@pytest.fixture(scope="module")
def hooked(attack_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`serve` with ElevenLabs' webhook secret set, on the attack database."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    env = {
        **clean,
        "ONGEA_DATA_DIR": str(tmp_path_factory.mktemp("hooked")),
        "ONGEA_JWT_SECRET": JWT_SECRET,
        "ELEVENLABS_WEBHOOK_SECRET": SECRET,
        "ONGEA_DB_POOL_MIN": "1",
        "ONGEA_DB_POOL_MAX": "2",
    }
    server = ServeProcess(["--database-url", attack_url], env, limit=60)
    yield server.base
    server.stop()


@pytest.mark.parametrize("said", ["my pin is seven three nine two", "pin 7 3 9 2", "saba tatu tisa mbili"])
async def test_a_pin_said_to_the_agent_is_not_kept_from_the_post_call_webhook(
    hooked: str, make_user: Any, db: asyncpg.Pool, said: str
) -> None:
    user = await make_user(pin="7392")
    session = await mint(hooked, user.token)
    conversation = f"conv_{os.urandom(8).hex()}"
    body = payload(session["session_id"], conversation, said)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{hooked}/v1/webhooks/elevenlabs",
            data=body,
            headers={"ElevenLabs-Signature": sign(body, SECRET), "Content-Type": "application/json"},
        ) as r:
            assert r.status == 200, await r.text()
    row = await db.fetchrow(
        "SELECT transcript::text AS t, payload::text AS p FROM voice_session_transcripts"
        " WHERE conversation_id = $1",
        conversation,
    )
    assert row is not None  # the conversation is kept ...
    assert "Habari" in row["t"]
    leaks = await db.fetchval("SELECT $1 ~* $3 OR $2 ~* $3", row["t"], row["p"], _TRACE)
    assert not leaks, row  # ... but not the PIN said aloud
