"""The pieces every part of the app API's OpenAPI description is built from (an operation, a path id, a
query parameter), below the modules that describe the paths, which all use them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

REF = "#/components/schemas/{model}"
USER: list[dict[str, list[str]]] = [{"userToken": []}, {"xiApiKey": []}]


def content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}


def op(
    summary: str,
    ok: tuple[int, type[BaseModel] | None, str],
    *,
    body: type[BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    params: list[dict[str, Any]] | None = None,
    secured: bool = True,
) -> dict[str, Any]:
    status, model, description = ok
    success: dict[str, Any] = {"description": description}
    if model is not None:
        success["content"] = content(model)
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}},
    }
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(status): success,
            **{str(e): error for e in sorted({*errors, 401, 503} if secured else errors)},
        },
    }
    if secured:
        operation["security"] = USER
    if body is not None:
        operation["requestBody"] = {"required": True, "content": content(body)}
    if params:
        operation["parameters"] = params
    return operation


def path_id(what: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "string", "format": "uuid"},
    }


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
