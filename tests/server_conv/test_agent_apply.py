"""`ongea-pesa agent-config --apply` drives the official `elevenlabs` SDK against a recorder standing in for
ElevenLabs' API (a real aiohttp server; ELEVENLABS_BASE_URL points the SDK at it). Every request body is
checked against the SDK's own request models, unknown fields refused; the agent's id is kept in the database,
so a second run sends no update, and a changed definition updates the same agent."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pydantic
import pytest
from aiohttp import web
from elevenlabs.types.agent_platform_settings_request_model import AgentPlatformSettingsRequestModel
from elevenlabs.types.conversational_config import ConversationalConfig
from elevenlabs.types.webhook_hmac_settings import WebhookHmacSettings

API_KEY = "xi-test-key-for-the-recorder"


def no_unknown_fields(value: Any, where: str = "body") -> list[str]:
    """Every field the SDK's models did not recognise (they accept extras silently)."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        found += [f"{where}.{name}" for name in (value.model_extra or {})]
        for name in type(value).model_fields:
            found += no_unknown_fields(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list | tuple):
        for n, item in enumerate(value):
            found += no_unknown_fields(item, f"{where}[{n}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += no_unknown_fields(item, f"{where}.{key}")
    return found


def checked(model: type[pydantic.BaseModel], body: Any, where: str) -> pydantic.BaseModel:
    parsed = model.model_validate(body)
    assert no_unknown_fields(parsed, where) == []
    return parsed


@dataclass
class Recorder:
    """ElevenLabs' agents and workspace-webhooks API, as much as the SDK calls, recording each request."""

    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    base: str = ""

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m != "GET"]

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers.get("xi-api-key") == API_KEY, "the SDK sends the API key"
        body: Any = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, body))
        route = (request.method, request.path)
        if route == ("GET", "/v1/workspace/webhooks"):
            return web.json_response({"webhooks": self.webhooks})
        if route == ("POST", "/v1/workspace/webhooks"):
            settings = checked(WebhookHmacSettings, body["settings"], "settings")
            assert set(body) == {"settings"}
            hook_id = f"wh_{len(self.webhooks) + 1}"
            self.webhooks.append(
                {
                    "name": settings.name,  # type: ignore[attr-defined]
                    "webhook_id": hook_id,
                    "webhook_url": settings.webhook_url,  # type: ignore[attr-defined]
                    "is_disabled": False,
                    "is_auto_disabled": False,
                    "created_at_unix": 1,
                    "auth_type": "hmac",
                }
            )
            return web.json_response({"webhook_id": hook_id, "webhook_secret": "wsec_from_elevenlabs_0123"})
        if route == ("POST", "/v1/convai/agents/create"):
            self.check_agent(body)
            agent_id = f"agent_{len(self.agents) + 1}"
            self.agents[agent_id] = body
            return web.json_response({"agent_id": agent_id})
        agent_id = request.path.removeprefix("/v1/convai/agents/")
        if agent_id not in self.agents:
            return web.json_response({"detail": "not found"}, status=404)
        if request.method == "PATCH":
            self.check_agent(body)
            self.agents[agent_id] = body
        return web.json_response({"agent_id": agent_id, "name": self.agents[agent_id]["name"]})

    def check_agent(self, body: dict[str, Any]) -> None:
        assert set(body) <= {"name", "conversation_config", "platform_settings"}, set(body)
        checked(ConversationalConfig, body["conversation_config"], "conversation_config")
        checked(AgentPlatformSettingsRequestModel, body["platform_settings"], "platform_settings")


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.base = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


async def apply(recorder: Recorder, database_url: str, server_url: str, **env: str) -> tuple[int, str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS_", "ONGEA_", "DARAJA_"))}
    environ.update(
        {"ELEVENLABS_API_KEY": API_KEY, "ELEVENLABS_BASE_URL": recorder.base, "DATABASE_URL": database_url}
    )
    environ.update(env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "voice_server.cli", "agent-config", "--apply", "--server-url", server_url),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_apply_creates_once_then_sends_nothing_then_updates_the_same_agent(
    recorder: Recorder, database_url: str, pool: asyncpg.Pool
) -> None:
    await pool.execute("DELETE FROM elevenlabs_agents WHERE api_base = $1", recorder.base)
    code, out, err = await apply(recorder, database_url, "https://pay.example.ke")
    assert code == 0, err
    assert recorder.writes() == [("POST", "/v1/workspace/webhooks"), ("POST", "/v1/convai/agents/create")]
    assert "agent agent_1: created" in out and "ELEVENLABS_AGENT_ID=agent_1" in out
    # The webhook's secret is ElevenLabs', shown once: printed for the person to set.
    assert "ELEVENLABS_WEBHOOK_SECRET=wsec_from_elevenlabs_0123" in out
    assert recorder.webhooks[0]["webhook_url"] == "https://pay.example.ke/v1/webhooks/elevenlabs"
    body = recorder.agents["agent_1"]
    webhooks = body["platform_settings"]["workspace_overrides"]["webhooks"]
    assert webhooks["post_call_webhook_id"] == "wh_1" and webhooks["events"] == ["transcript"]
    tools = {t["name"]: t for t in body["conversation_config"]["agent"]["prompt"]["tools"]}
    confirm = tools["confirm_transaction"]
    assert confirm["interruption_mode"] == "disable_during_tool_and_turn"
    assert confirm["disable_interruptions"] is True
    assert confirm["response_timeout_secs"] >= 30 and confirm["execution_mode"] == "immediate"
    assert tools["get_balance"]["interruption_mode"] == "allow"
    for name in ("parse_command", "propose_transaction", "confirm_transaction", "cancel_transaction"):
        placeholders = tools[name]["dynamic_variables"]["dynamic_variable_placeholders"]
        assert set(placeholders) == {"session_id", "secret__session_token"}
    stored = await pool.fetchrow(
        "SELECT agent_id, webhook_id FROM elevenlabs_agents WHERE api_base = $1", recorder.base
    )
    assert dict(stored) == {"agent_id": "agent_1", "webhook_id": "wh_1"}

    before = len(recorder.requests)
    code, out, err = await apply(
        recorder, database_url, "https://pay.example.ke", ELEVENLABS_AGENT_ID="agent_1",
        ELEVENLABS_WEBHOOK_SECRET="wsec_from_elevenlabs_0123",
    )  # fmt: skip
    assert code == 0, err
    assert [m for m, _, _ in recorder.requests[before:]] == ["GET", "GET"]  # the webhook list, the agent
    assert "agent agent_1: up to date, nothing sent" in out
    assert "ELEVENLABS_WEBHOOK_SECRET=" not in out and "ELEVENLABS_AGENT_ID=" not in out

    before = len(recorder.requests)
    code, out, err = await apply(recorder, database_url, "https://pay2.example.ke")
    assert code == 0, err
    assert [(m, p) for m, p, _ in recorder.requests[before:] if m != "GET"] == [
        ("POST", "/v1/workspace/webhooks"),  # the new URL has no webhook yet
        ("PATCH", "/v1/convai/agents/agent_1"),
    ]
    assert "agent agent_1: updated" in out
    assert set(recorder.agents) == {"agent_1"}


async def test_an_agent_deleted_on_elevenlabs_is_created_again(
    recorder: Recorder, database_url: str, pool: asyncpg.Pool
) -> None:
    await pool.execute("DELETE FROM elevenlabs_agents WHERE api_base = $1", recorder.base)
    code, _, err = await apply(recorder, database_url, "https://pay.example.ke")
    assert code == 0, err
    recorder.agents.clear()  # someone deleted it in the dashboard
    code, out, err = await apply(recorder, database_url, "https://pay.example.ke")
    assert code == 0, err
    assert "agent agent_1: created" in out and recorder.writes()[-1] == ("POST", "/v1/convai/agents/create")
    assert "ELEVENLABS_WEBHOOK_SECRET is not set" in err  # the webhook exists: its secret was shown before


async def test_apply_without_an_api_key_is_one_clear_line(database_url: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS_", "ONGEA_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voice_server.cli", "agent-config", "--apply",
        env={**environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 2
    assert err.decode().strip().splitlines() == [
        "agent-config: --apply needs ELEVENLABS_API_KEY (ElevenLabs: API keys)"
    ]


async def test_apply_when_elevenlabs_cannot_be_reached_is_one_clear_line(database_url: str) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ELEVENLABS_", "ONGEA_", "DARAJA_"))}
    environ.update({"ELEVENLABS_API_KEY": API_KEY, "ELEVENLABS_BASE_URL": closed})
    environ["DATABASE_URL"] = database_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voice_server.cli", "agent-config", "--apply",
        "--server-url", "https://pay.example.co.ke",
        env=environ, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    lines = [line for line in err.decode().strip().splitlines() if not line.startswith("ongea-pesa: using")]
    assert proc.returncode == 1
    assert "Traceback" not in err.decode()
    assert lines == [f"agent-config: cannot reach {closed}: ConnectError: All connection attempts failed"]
