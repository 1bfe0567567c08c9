"""`POST /v1/webhooks/elevenlabs`: ElevenLabs' post-call webhook. The `ElevenLabs-Signature` header is checked
(the official SDK's `construct_event`: HMAC-SHA256 of `timestamp.body`, 30-minute tolerance) before anything
of the body is read; a bad one is a 401 and nothing is stored. The transcript is kept against its voice
session (found by the `session_id` dynamic variable, or by the conversation id of our own WebSocket), beside
the session's own turns and removed with them after the retention; a PIN said aloud in it is not kept."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from elevenlabs.client import ElevenLabs
from elevenlabs.errors import BadRequestError
from pydantic import BaseModel, Field

from voice_server.appkeys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from voice_server.bodies import allow_larger_body
from voice_server.conversation.records import SPOKEN_PIN
from voice_server.dialogue.pin_speech import is_spoken_pin
from voice_server.http_errors import ApiError

log = logging.getLogger(__name__)

TOLERANCE_SECONDS = 30 * 60
SIGNATURE_HEADER = "ElevenLabs-Signature"
MAX_WEBHOOK_BYTES = 8 * 1024 * 1024  # a long conversation's transcript is bigger than other bodies

# Only its pure `webhooks.construct_event` is used: no request is ever sent with this client.
_SDK = ElevenLabs(api_key="signature-checks-only")

_STORE = """
    WITH session AS (
        SELECT id, user_id FROM voice_sessions WHERE session_id = $1
    )
    INSERT INTO voice_session_transcripts
        (voice_session_id, user_id, conversation_id, agent_id, event_type, transcript, payload,
         event_timestamp)
    SELECT (SELECT id FROM session), (SELECT user_id FROM session), $2, $3, $4, $5::jsonb, $6::jsonb, $7
    ON CONFLICT (conversation_id, event_type) DO UPDATE
        SET transcript = EXCLUDED.transcript, payload = EXCLUDED.payload, received_at = now()
    RETURNING voice_session_id
"""


class WebhookStored(BaseModel):
    status: str = Field(description='"stored"')
    session_id: str | None = Field(description="the voice session it was stored against, if found")


def verify(raw: str, header: str, secret: str, *, now: float | None = None) -> dict[str, Any]:
    """The event, or ApiError 401. The SDK refuses stale timestamps; a timestamp from the future is refused
    here too, so a captured signature cannot be kept for later."""
    try:
        stamp = int(dict(p.split("=", 1) for p in header.split(",") if "=" in p).get("t", ""))
    except ValueError:
        raise ApiError(401, "bad_signature", "the ElevenLabs-Signature header is not valid") from None
    if abs((now if now is not None else time.time()) - stamp) > TOLERANCE_SECONDS:
        raise ApiError(401, "bad_signature", "the signature's timestamp is outside the tolerance")
    try:
        event = _SDK.webhooks.construct_event(raw, header, secret)
    except BadRequestError:
        raise ApiError(401, "bad_signature", "the ElevenLabs-Signature header does not match") from None
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "the webhook body is not valid JSON") from None
    if not isinstance(event, dict):
        raise ApiError(400, "invalid_request", "the webhook body is not a JSON object")
    return event


def without_pins(transcript: list[Any]) -> tuple[list[Any], bool]:
    """The post-call transcript with every user message that is a PIN said aloud (by the dialogue's own
    test, taking bare digits as a PIN: the call's context is not known here) replaced by the marker the
    session's turns keep; and whether any was."""
    out: list[Any] = []
    changed = False
    for entry in transcript:
        message = entry.get("message") if isinstance(entry, dict) else None
        if isinstance(message, str) and entry.get("role") == "user" and is_spoken_pin(message, pin_next=True):
            entry, changed = {**entry, "message": SPOKEN_PIN}, True
        out.append(entry)
    return out, changed


async def _read_body(request: web.Request) -> str:
    """The body as text (read by the app's middleware within MAX_WEBHOOK_BYTES); not UTF-8 is ''."""
    try:
        return (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        return ""


def _session_id(data: dict[str, Any]) -> str:
    init = data.get("conversation_initiation_client_data")
    variables = init.get("dynamic_variables") if isinstance(init, dict) else None
    if isinstance(variables, dict) and isinstance(variables.get("session_id"), str):
        return str(variables["session_id"])
    return str(data.get("conversation_id", ""))


async def elevenlabs_webhook(request: web.Request) -> web.Response:
    metrics = request.app[METRICS_KEY]
    header = request.headers.get(SIGNATURE_HEADER, "")
    raw = await _read_body(request)
    try:
        event = verify(raw, header, request.app[SETTINGS_KEY].elevenlabs_webhook_key())
    except ApiError as exc:
        metrics.webhooks.labels("bad_signature" if exc.status == 401 else "invalid").inc()
        raise
    data = event.get("data")
    kind = event.get("type")
    if (
        not isinstance(data, dict)
        or not isinstance(kind, str)
        or not isinstance(data.get("conversation_id"), str)
    ):
        metrics.webhooks.labels("invalid").inc()
        raise ApiError(
            400, "invalid_request", "expected {type, event_timestamp, data: {conversation_id, ...}}"
        )
    stamp = event.get("event_timestamp")
    when = datetime.fromtimestamp(stamp, UTC) if isinstance(stamp, int) and 0 < stamp < 2**33 else None
    said = data.get("transcript")
    transcript: list[Any] = said if isinstance(said, list) else []
    kept, redacted = without_pins(transcript)
    if redacted:  # the body is kept as received, less the PINs said in it
        raw = json.dumps({**event, "data": {**data, "transcript": kept}})
    session_id = _session_id(data)[:200]
    stored: uuid.UUID | None = await request.app[POOL_KEY].fetchval(
        _STORE,
        session_id,
        data["conversation_id"][:200],
        str(data.get("agent_id", ""))[:200] or None,
        kind[:100],
        json.dumps(kept),
        raw,
        when,
    )
    metrics.webhooks.labels("stored").inc()
    if stored is None:
        log.warning("ElevenLabs webhook for unknown session %r stored without a session", session_id)
    body = WebhookStored(status="stored", session_id=session_id if stored else None)
    return web.json_response(body.model_dump())


def setup_webhooks(app: web.Application) -> None:
    app.router.add_post("/v1/webhooks/elevenlabs", elevenlabs_webhook)
    allow_larger_body(app, "/v1/webhooks/elevenlabs", MAX_WEBHOOK_BYTES)
