"""The ElevenLabs agent definition for this server, generated from the tools' pydantic models: system prompt,
first message, webhook tools (JSON schemas, the session-token header), client tools and dynamic variables."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from voice_server.tools.models import TOOLS

SYSTEM_PROMPT = """You are Ongea Pesa, a voice assistant: people in Kenya pay with M-Pesa by talking to you.
Speak English or Swahili, whichever the person speaks. Keep every answer short.

Rules you must never break:
- You never decide anything about money. For every request about money call `parse_command` with exactly
  what the person said (or `propose_transaction` when you already have every detail), then say the tool's
  `say` field word for word.
- Nothing is paid until the person clearly says yes to the exact read-back. Only then call
  `confirm_transaction` with that proposal's `proposal_id` and `version`. A "no" with a change is a
  correction: pass it to `parse_command`. A bare "no" or "cancel": call `cancel_transaction`.
- Never ask for, repeat or say a PIN: the app collects it on its keypad.
- For the balance call `get_balance`; for past payments call `recent_transactions`.
- If a tool answers with an error, say that it did not work and ask the person to try again. But if
  `confirm_transaction` fails or does not answer, never propose the payment again: call
  `recent_transactions` and tell the person whether it went through (a payment is made at most once).
"""

FIRST_MESSAGE = "Habari! I'm Ongea Pesa. Who would you like to pay, and how much?"

DYNAMIC_VARIABLES = {
    "session_id": "the voice session id from POST /v1/sessions",
    "secret__session_token": "the session token from POST /v1/sessions (sent only in the tools' header)",
    "language": "en",
}

CLIENT_TOOLS: dict[str, tuple[str, dict[str, str]]] = {
    "show_proposal": (
        "Show the proposal card with Confirm and Cancel buttons.",
        {
            "proposal_id": "the proposal",
            "version": "its version",
            "readback": "the read-back sentence",
            "amount": "amount in KES",
            "fee": "fee in KES",
            "total": "amount plus fee",
        },
    ),
    "request_pin": ("Ask for the PIN on the app's keypad.", {"proposal_id": "the proposal it unlocks"}),
    "show_receipt": (
        "Show the receipt of a payment.",
        {"transaction_id": "the transaction", "status": "its status", "balance": "the new balance"},
    ),
    "balance_update": ("Show the new wallet balance.", {"balance": "wallet balance in KES"}),
}

# How long the agent waits for each tool (ElevenLabs allows 5 to 300 s). The ledger answers a confirmation in
# one database round trip, but under load (and with the PIN's argon2 check) that may take seconds, and a
# confirmation the agent gave up on may still have gone through: it gets a minute, and the prompt says to
# look it up rather than propose it again.
TOOL_TIMEOUT_SECONDS = {"confirm_transaction": 60, "cancel_transaction": 30}
DEFAULT_TOOL_TIMEOUT_SECONDS = 20

# Tools that change money: the person cannot talk over them while they run, nor over the answer that follows
# (a "no" spoken over "sent" must not be taken for a cancellation of what is already done).
UNINTERRUPTIBLE_TOOLS = ("confirm_transaction", "cancel_transaction")

_LITERAL_TYPES = {"string", "number", "integer", "boolean"}


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in prop:
        target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        prop = {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    if "anyOf" in prop:
        choices = [_resolve(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
        merged = {**choices[0]} if choices else {"type": "string"}
        if "description" in prop:
            merged["description"] = prop["description"]
        return merged
    return prop


def elevenlabs_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A pydantic body model as ElevenLabs' `request_body_schema` (literal properties only: each with a
    description for the LLM to fill, or the dynamic variable it comes from)."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    properties: dict[str, Any] = {}
    for name, raw in schema.get("properties", {}).items():
        if name == "session_id":
            properties[name] = {"type": "string", "dynamic_variable": "session_id"}
            continue
        prop = _resolve(raw, defs)
        kind = prop.get("type", "string")
        out: dict[str, Any] = {
            "type": kind if kind in _LITERAL_TYPES else "string",
            "description": prop.get("description") or raw.get("description") or name,
        }
        if "enum" in prop:
            out["enum"] = [str(v) for v in prop["enum"]]
        properties[name] = out
    required = ["session_id", *(n for n in schema.get("required", []) if n != "session_id")]
    return {"type": "object", "properties": properties, "required": required}


def _interruptions(name: str) -> dict[str, Any]:
    if name in UNINTERRUPTIBLE_TOOLS:
        # `disable_interruptions` is the older name of the same setting, kept for agents on older versions.
        return {"interruption_mode": "disable_during_tool_and_turn", "disable_interruptions": True}
    return {"interruption_mode": "allow"}


def agent_config(server_url: str) -> dict[str, Any]:
    base = server_url.rstrip("/")
    webhook_tools = [
        {
            "type": "webhook",
            "name": name,
            "description": spec.description,
            "response_timeout_secs": TOOL_TIMEOUT_SECONDS.get(name, DEFAULT_TOOL_TIMEOUT_SECONDS),
            **_interruptions(name),
            # The answer must be spoken as it came (`say`), never in the background.
            "execution_mode": "immediate",
            # The variables the tool's header and body are filled from, with their placeholders.
            "dynamic_variables": {
                "dynamic_variable_placeholders": {
                    k: DYNAMIC_VARIABLES[k] for k in ("session_id", "secret__session_token")
                }
            },
            "api_schema": {
                "url": f"{base}/v1/tools/{name}",
                "method": "POST",
                "content_type": "application/json",
                "request_headers": {"Authorization": "Bearer {{secret__session_token}}"},
                "request_body_schema": elevenlabs_schema(spec.model),
            },
        }
        for name, spec in TOOLS.items()
    ]
    client_tools = [
        {
            "type": "client",
            "name": name,
            "description": description,
            "expects_response": name in ("show_proposal", "request_pin"),
            "parameters": {
                "type": "object",
                "properties": {p: {"type": "string", "description": d} for p, d in params.items()},
                "required": list(params),
            },
        }
        for name, (description, params) in CLIENT_TOOLS.items()
    ]
    return {
        "name": "Ongea Pesa",
        "conversation_config": {
            "agent": {
                "first_message": FIRST_MESSAGE,
                "language": "en",
                "dynamic_variables": {"dynamic_variable_placeholders": DYNAMIC_VARIABLES},
                "prompt": {"prompt": SYSTEM_PROMPT, "tools": webhook_tools + client_tools},
            }
        },
        "post_call_webhook_url": f"{base}/v1/webhooks/elevenlabs",
    }
