"""`/openapi.json`: the HTTP side described from the same pydantic models the handlers use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from voice_server.api_models import (
    C2bValidationAnswer,
    DarajaAck,
    ErrorResponse,
    Health,
    TopupRequest,
    TopupResponse,
)
from voice_server.app_api.openapi import app_api_paths
from voice_server.mpesa_routes import CALLBACK_KINDS
from voice_server.tools.openapi import MODELS as CONVERSATION_MODELS
from voice_server.tools.openapi import conversation_paths

_REF = "#/components/schemas/{model}"


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}},
    }


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(ErrorResponse, "error") for s in statuses}


def build_openapi(version: str) -> dict[str, Any]:
    app_models, app_paths = app_api_paths()
    models: list[type[BaseModel]] = [
        C2bValidationAnswer,
        DarajaAck,
        ErrorResponse,
        Health,
        TopupRequest,
        TopupResponse,
        *app_models,
    ]
    models += CONVERSATION_MODELS
    _, schemas = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ongea Pesa", "version": version},
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "userToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "xiApiKey": {"type": "apiKey", "in": "header", "name": "xi-api-key"},
                "sessionToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (session token)"},
            },
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Is the database reachable?",
                    "responses": {
                        "200": _json(Health, "healthy"),
                        "503": _json(Health, "database unreachable"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (Authorization: Bearer ONGEA_METRICS_TOKEN)",
                    "responses": {
                        "200": {"description": "Prometheus text format", "content": {"text/plain": {}}},
                        **_errors(401, 403),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                }
            },
            "/v1/topups": {
                "post": {
                    "summary": "Top up the wallet from M-Pesa (an STK push to the user's own number)",
                    "security": [{"userToken": []}, {"xiApiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": _REF.format(model="TopupRequest")}}
                        },
                    },
                    "responses": {
                        "201": _json(TopupResponse, "STK push sent; credited once M-Pesa confirms"),
                        **_errors(400, 401, 404, 408, 413, 429, 502, 503),
                    },
                }
            },
            "/v1/callbacks/{secret}/{kind}": {
                "post": {
                    "summary": "Daraja result, timeout and STK callbacks (the secret path is their check)",
                    "parameters": [
                        {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}},
                        {
                            "name": "kind",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(CALLBACK_KINDS)},
                        },
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {}}},
                    "responses": {
                        "200": _json(DarajaAck, "recorded durably"),
                        **_errors(400, 404),
                    },
                }
            },
            "/v1/callbacks/{secret}/c2b/validation": {
                "post": {
                    "summary": "Daraja's C2B validation of a deposit into the paybill (bank_to_mpesa)",
                    "parameters": [
                        {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {}}},
                    "responses": {
                        "200": _json(C2bValidationAnswer, "accepted only for an awaited reference"),
                        **_errors(404),
                    },
                }
            },
            "/v1/callbacks/{secret}/c2b/confirmation": {
                "post": {
                    "summary": "Daraja's C2B confirmation: recorded, credited once per TransID",
                    "parameters": [
                        {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {}}},
                    "responses": {"200": _json(DarajaAck, "recorded durably"), **_errors(400, 404)},
                }
            },
            "/v1/callbacks/{secret}/stk/{ref}": {
                "post": {
                    "summary": "STK callback naming its top-up (survives a lost push answer)",
                    "parameters": [
                        {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {}}},
                    "responses": {"200": _json(DarajaAck, "recorded durably"), **_errors(400, 404)},
                }
            },
            "/v1/callbacks/{secret}/payout/{outcome}/{ref}": {
                "post": {
                    "summary": "B2B result or queue timeout naming its payout (B2B carries no id of ours)",
                    "parameters": [
                        {"name": "secret", "in": "path", "required": True, "schema": {"type": "string"}},
                        {
                            "name": "outcome",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": ["result", "timeout"]},
                        },
                        {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {}}},
                    "responses": {"200": _json(DarajaAck, "recorded durably"), **_errors(400, 404)},
                }
            },
            **app_paths,
            **conversation_paths(),
        },
    }
