"""The conversation server's part of `/openapi.json` (sessions, the WebSocket, tools, webhook), built from the
same pydantic models the handlers validate with."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from voice_server.session_routes import SessionCreate, SessionCreated, SessionEnded, SignedUrl
from voice_server.session_turns import SessionTranscript
from voice_server.tools.models import TOOLS, ToolAnswer
from voice_server.webhooks import WebhookStored

_REF = "#/components/schemas/{model}"

MODELS: list[type[BaseModel]] = [
    SessionCreate,
    SessionCreated,
    SessionEnded,
    SignedUrl,
    SessionTranscript,
    ToolAnswer,
    WebhookStored,
    *(spec.model for spec in TOOLS.values()),
]


def _json(model: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json("ErrorResponse", "error") for s in statuses}


def _body(model: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}}


def conversation_paths() -> dict[str, Any]:
    user: list[dict[str, list[str]]] = [{"userToken": []}, {"xiApiKey": []}]
    session: list[dict[str, list[str]]] = [{"sessionToken": []}]
    paths: dict[str, Any] = {
        "/v1/sessions": {
            "post": {
                "summary": "Mint a voice session (the app's voice button), for the user's own wallet or a "
                "business they are a member of (404 otherwise)",
                "security": user,
                "requestBody": {**_body("SessionCreate"), "required": False},
                "responses": {
                    "201": _json("SessionCreated", "the session"),
                    **_errors(400, 401, 404, 429, 503),
                },
            }
        },
        "/v1/sessions/{session_id}": {
            "delete": {
                "summary": "End a voice session; its pending proposals are voided",
                "security": [*session, *user],
                "parameters": [
                    {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json("SessionEnded", "ended"), **_errors(401, 403, 404)},
            }
        },
        "/v1/sessions/{session_id}/transcript": {
            "get": {
                "summary": "This session's turns as the server kept them, oldest first (a PIN as a marker)",
                "security": [*session, *user],
                "parameters": [
                    {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json("SessionTranscript", "the turns"), **_errors(401, 403, 404)},
            }
        },
        "/v1/convai/conversation/get-signed-url": {
            "get": {
                "summary": "The same minting in ElevenLabs' shape (for the official SDK's Conversation)",
                "security": [{"xiApiKey": []}, {"userToken": []}],
                "parameters": [
                    {"name": "agent_id", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": _json("SignedUrl", "a WebSocket URL carrying a session token"),
                    **_errors(401, 429, 503),
                },
            }
        },
        "/v1/convai/conversation": {
            "get": {
                "summary": "The conversation WebSocket (ElevenLabs Conversational AI events, text subset)",
                "parameters": [
                    {
                        "name": "conversation_signature",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "agent_id", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "responses": {
                    "101": {"description": "switching to WebSocket; a bad session token closes it with 1008"},
                    **_errors(400),
                },
            }
        },
        "/v1/webhooks/elevenlabs": {
            "post": {
                "summary": "ElevenLabs post-call webhook (ElevenLabs-Signature checked first)",
                "parameters": [
                    {
                        "name": "ElevenLabs-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": {"200": _json("WebhookStored", "stored"), **_errors(400, 401, 413)},
            }
        },
    }
    for name, spec in TOOLS.items():
        paths[f"/v1/tools/{name}"] = {
            "post": {
                "summary": spec.description,
                "security": session,
                "requestBody": _body(spec.model.__name__),
                "responses": {
                    "200": _json("ToolAnswer", "what to say and what happened"),
                    **_errors(400, 401, 403, 404),
                },
            }
        }
    return paths
