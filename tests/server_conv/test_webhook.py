"""The post-call webhook as ElevenLabs sends it: signed bodies are stored against their voice session; a bad,
missing or stale signature is a 401 and nothing is stored."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import aiohttp
import asyncpg

from tests.server_conv.conftest import METRICS_HEADERS, WEBHOOK_SECRET, MakeUser, Server
from voice_server.sweeper import sweep


def sign(body: str, secret: str = WEBHOOK_SECRET, stamp: int | None = None) -> str:
    """ElevenLabs' scheme: `t=<unix>,v0=<hex HMAC-SHA256 of "t.body">`."""
    t = int(time.time()) if stamp is None else stamp
    digest = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v0={digest}"


def payload(session_id: str, conversation_id: str, said: str) -> str:
    return json.dumps(
        {
            "type": "post_call_transcription",
            "event_timestamp": int(time.time()),
            "data": {
                "agent_id": "agent_test",
                "conversation_id": conversation_id,
                "status": "done",
                "transcript": [
                    {"role": "agent", "message": "Habari!", "time_in_call_secs": 0},
                    {"role": "user", "message": said, "time_in_call_secs": 2},
                ],
                "conversation_initiation_client_data": {"dynamic_variables": {"session_id": session_id}},
            },
        }
    )


async def _session(server: Server, token: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/sessions", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["session_id"])


async def test_signed_webhook_is_stored_against_its_session(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session_id = await _session(server, user.token)
    conversation = f"conv_{uuid.uuid4().hex}"
    said = "tuma 500 kwa Mama'; DROP TABLE profiles; --"
    body = payload(session_id, conversation, said)
    url = f"{server.url}/v1/webhooks/elevenlabs"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers={"ElevenLabs-Signature": sign(body)}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json()) == {"status": "stored", "session_id": session_id}
        # ElevenLabs retries: the same conversation is stored once.
        async with http.post(url, data=body, headers={"ElevenLabs-Signature": sign(body)}) as r:
            assert r.status == 200
    rows = await pool.fetch(
        """SELECT t.user_id, t.transcript, v.session_id FROM voice_session_transcripts t
           JOIN voice_sessions v ON v.id = t.voice_session_id WHERE t.conversation_id = $1""",
        conversation,
    )
    assert len(rows) == 1
    assert rows[0]["user_id"] == user.user_id and rows[0]["session_id"] == session_id
    assert json.loads(rows[0]["transcript"])[1]["message"] == said


async def test_bad_signatures_are_refused_and_store_nothing(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session_id = await _session(server, user.token)
    conversation = f"conv_{uuid.uuid4().hex}"
    body = payload(session_id, conversation, "hello")
    tampered = body.replace("hello", "HELLO")
    now = int(time.time())
    attempts = {
        "no header": {},
        "wrong secret": {"ElevenLabs-Signature": sign(body, secret="not-the-secret")},
        "other body": {"ElevenLabs-Signature": sign(tampered)},
        "stale (31 minutes)": {"ElevenLabs-Signature": sign(body, stamp=now - 31 * 60)},
        "from the future": {"ElevenLabs-Signature": sign(body, stamp=now + 31 * 60)},
        "garbage": {"ElevenLabs-Signature": "t=abc,v0=zz"},
        "no v0": {"ElevenLabs-Signature": f"t={now}"},
    }
    async with aiohttp.ClientSession() as http:
        for what, headers in attempts.items():
            async with http.post(f"{server.url}/v1/webhooks/elevenlabs", data=body, headers=headers) as r:
                assert r.status == 401, what
                assert (await r.json())["error"]["code"] == "bad_signature", what
        # A good signature over a body that is not an event is a 400, not a 500.
        junk = "[1, 2, 3]"
        async with http.post(
            f"{server.url}/v1/webhooks/elevenlabs", data=junk, headers={"ElevenLabs-Signature": sign(junk)}
        ) as r:
            assert r.status == 400
        async with http.get(f"{server.url}/metrics", headers=METRICS_HEADERS) as r:
            assert 'ongea_elevenlabs_webhooks_total{outcome="bad_signature"}' in await r.text()
    stored = await pool.fetchval(
        "SELECT count(*) FROM voice_session_transcripts WHERE conversation_id = $1", conversation
    )
    assert stored == 0


async def test_a_pin_said_in_the_call_is_not_kept_and_the_transcript_goes_with_the_turns(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session_id = await _session(server, user.token)
    conversation = f"conv_{uuid.uuid4().hex}"
    body = payload(session_id, conversation, "my pin is 7 3 9 5")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/v1/webhooks/elevenlabs", data=body, headers={"ElevenLabs-Signature": sign(body)}
        ) as r:
            assert r.status == 200, await r.text()
    row = await pool.fetchrow(
        "SELECT transcript::text, payload::text FROM voice_session_transcripts WHERE conversation_id = $1",
        conversation,
    )
    assert "7 3 9 5" not in row["transcript"] and "7 3 9 5" not in row["payload"], dict(row)
    assert "Habari!" in row["transcript"] and "a PIN said aloud" in row["transcript"]
    await pool.execute(
        """UPDATE voice_session_transcripts SET received_at = now() - interval '31 days'
           WHERE conversation_id = $1""",
        conversation,
    )
    await sweep(pool, turn_retention_days=30)
    left = "SELECT count(*) FROM voice_session_transcripts WHERE conversation_id = $1"
    assert await pool.fetchval(left, conversation) == 0
