"""`ongea-pesa agent-config --apply`: makes the ElevenLabs agent of `agent-config` live, through the official
SDK's agents API, idempotently.

The agent it created is kept in `elevenlabs_agents` (sql/0022) with the digest of the definition it sent: a
second run with the same definition sends no update, a changed one updates that agent, and a deleted one is
created again. The post-call webhook is a workspace webhook (HMAC), as ElevenLabs documents it: its secret
exists only on ElevenLabs' side and is shown once, when the webhook is created (in the dashboard's Settings >
Webhooks, or here through the same API); the agent is pointed at it by id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import asyncpg
from elevenlabs import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.environment import ElevenLabsEnvironment
from elevenlabs.types.agent_platform_settings_request_model import AgentPlatformSettingsRequestModel
from elevenlabs.types.conversational_config import ConversationalConfig
from elevenlabs.types.webhook_hmac_settings import WebhookHmacSettings

from voice_server.settings import Settings
from voice_server.tools.agent_config import agent_config

WEBHOOK_NAME = "Ongea Pesa post-call"
# What the post-call webhook carries: the transcript (stored in voice_session_transcripts), not the audio.
WEBHOOK_EVENTS = ["transcript"]
API_TIMEOUT_SECONDS = 30.0


def api_base(settings: Settings) -> str:
    return (settings.elevenlabs_base_url or ElevenLabsEnvironment.PRODUCTION.value).rstrip("/")


def elevenlabs_client(settings: Settings, *, timeout: float) -> AsyncElevenLabs:
    """The official SDK's client on ELEVENLABS_API_KEY (and ELEVENLABS_BASE_URL when set)."""
    if settings.elevenlabs_api_key is None:
        raise ValueError("ELEVENLABS_API_KEY is not set")
    return AsyncElevenLabs(
        api_key=settings.elevenlabs_api_key.get_secret_value(), base_url=api_base(settings), timeout=timeout
    )


@dataclass(frozen=True)
class Applied:
    agent_id: str
    action: str  # "created", "updated" or "unchanged"
    webhook_id: str
    webhook_secret: str | None  # only when the webhook was created by this run (ElevenLabs shows it once)


def definition(server_url: str, webhook_id: str) -> dict[str, Any]:
    """The create/update request: `agent-config`'s agent, its post-call webhook set by id."""
    config = agent_config(server_url)
    return {
        "name": config["name"],
        "conversation_config": config["conversation_config"],
        "platform_settings": {
            "workspace_overrides": {
                "webhooks": {"post_call_webhook_id": webhook_id, "events": WEBHOOK_EVENTS}
            }
        },
    }


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def post_call_webhook(client: AsyncElevenLabs, url: str) -> tuple[str, str | None]:
    """The workspace webhook that posts to `url`, else a new one (whose secret ElevenLabs returns this once;
    a webhook's URL cannot be changed, so a new server URL gets a new webhook and a new secret)."""
    listed = await client.webhooks.list()
    for hook in listed.webhooks:
        if hook.webhook_url.rstrip("/") == url:
            return hook.webhook_id, None
    created = await client.webhooks.create(settings=WebhookHmacSettings(name=WEBHOOK_NAME, webhook_url=url))
    return created.webhook_id, created.webhook_secret


async def apply_agent(settings: Settings, pool: asyncpg.Pool, server_url: str) -> Applied:
    client = elevenlabs_client(settings, timeout=API_TIMEOUT_SECONDS)
    base = api_base(settings)
    row = await pool.fetchrow(
        "SELECT agent_id, definition_sha256 FROM elevenlabs_agents WHERE api_base = $1", base
    )
    url = f"{server_url.rstrip('/')}/v1/webhooks/elevenlabs"
    webhook_id, webhook_secret = await post_call_webhook(client, url)
    body = definition(server_url, webhook_id)
    wanted = digest(body)
    conversation = ConversationalConfig.model_validate(body["conversation_config"])
    platform = AgentPlatformSettingsRequestModel.model_validate(body["platform_settings"])
    agent_id = row["agent_id"] if row else None
    if agent_id is not None and not await _exists(client, agent_id):
        agent_id = None  # deleted on ElevenLabs' side: made again
    if agent_id is None:
        created = await client.conversational_ai.agents.create(
            name=body["name"], conversation_config=conversation, platform_settings=platform
        )
        agent_id, action = created.agent_id, "created"
    elif row is not None and row["definition_sha256"] == wanted:
        action = "unchanged"
    else:
        await client.conversational_ai.agents.update(
            agent_id, name=body["name"], conversation_config=conversation, platform_settings=platform
        )
        action = "updated"
    await pool.execute(
        """INSERT INTO elevenlabs_agents (api_base, agent_id, webhook_id, definition_sha256)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (api_base) DO UPDATE SET agent_id = $2, webhook_id = $3, definition_sha256 = $4,
               updated_at = now()""",
        base,
        agent_id,
        webhook_id,
        wanted,
    )
    return Applied(agent_id, action, webhook_id, webhook_secret)


async def _exists(client: AsyncElevenLabs, agent_id: str) -> bool:
    try:
        await client.conversational_ai.agents.get(agent_id)
    except ApiError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True
