"""`ongea-pesa agent-config` prints an agent the official SDK's own types accept, with tools that match the
server's endpoints; `/openapi.json` describes every conversation route."""

from __future__ import annotations

import json
import subprocess
import sys

import aiohttp
from elevenlabs.types.client_tool_config_input import ClientToolConfigInput
from elevenlabs.types.webhook_tool_config_input import WebhookToolConfigInput

from tests.server_conv.conftest import Server


def test_agent_config_is_valid_for_the_sdk_and_names_our_tools() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "agent-config", "--server-url", "https://pay.example.ke/"],
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(out.stdout)
    agent = config["conversation_config"]["agent"]
    assert agent["first_message"] and "confirm_transaction" in agent["prompt"]["prompt"]
    assert set(agent["dynamic_variables"]["dynamic_variable_placeholders"]) >= {
        "session_id",
        "secret__session_token",
    }
    tools = {t["name"]: t for t in agent["prompt"]["tools"]}
    webhook = {n for n, t in tools.items() if t["type"] == "webhook"}
    assert webhook == {
        "parse_command",
        "propose_transaction",
        "confirm_transaction",
        "cancel_transaction",
        "get_balance",
        "recent_transactions",
    }
    assert {n for n, t in tools.items() if t["type"] == "client"} == {
        "show_proposal",
        "request_pin",
        "show_receipt",
        "balance_update",
    }
    for name in webhook:
        tool = WebhookToolConfigInput.model_validate(tools[name])
        schema = tools[name]["api_schema"]
        assert tool.api_schema.url == f"https://pay.example.ke/v1/tools/{name}"
        assert schema["request_headers"] == {"Authorization": "Bearer {{secret__session_token}}"}
        body = schema["request_body_schema"]
        assert body["properties"]["session_id"] == {"type": "string", "dynamic_variable": "session_id"}
        for prop in body["properties"].values():
            assert prop["type"] in ("string", "number", "integer", "boolean")
    for name in ("show_proposal", "request_pin"):
        ClientToolConfigInput.model_validate(tools[name])
    propose = tools["propose_transaction"]["api_schema"]["request_body_schema"]
    assert set(propose["required"]) == {"session_id", "type", "amount"}
    assert "send_phone" in propose["properties"]["type"]["enum"]
    confirm = tools["confirm_transaction"]["api_schema"]["request_body_schema"]
    assert confirm["properties"]["version"]["type"] == "integer"


async def test_openapi_describes_the_conversation_routes(server: Server) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/openapi.json") as r:
            doc = await r.json()
    paths = doc["paths"]
    for path in (
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/convai/conversation/get-signed-url",
        "/v1/convai/conversation",
        "/v1/webhooks/elevenlabs",
        "/v1/tools/propose_transaction",
        "/v1/tools/confirm_transaction",
    ):
        assert path in paths, path
    schemas = doc["components"]["schemas"]
    assert "amount" in schemas["ProposeTransaction"]["properties"]
    assert "say" in schemas["ToolAnswer"]["required"]
