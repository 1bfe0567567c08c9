"""`POST /v1/tools/{name}`: the agent's server tools. Authenticated by the session token; each call is one
driver turn on the same session state as the WebSocket (so a proposal made by voice can be confirmed here,
and the reverse, exactly once)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from voice_server.auth import profile_missing
from voice_server.conversation.driver import SessionClosed, TurnResult
from voice_server.conversation.records import Keep
from voice_server.http_errors import ApiError
from voice_server.session_access import closed_error, session_claims
from voice_server.tools.models import TOOLS, ToolAnswer
from voice_server.ws.live import LIVE_KEY, DatabaseUnavailable, ProfileMissing, TurnsBusy

_WRAPPER_KEYS = {"tool_call_id", "tool_name", "parameters", "conversation_id"}


def unwrap(raw: object) -> object:
    """The flat body, or the `parameters` of `{tool_call_id, tool_name, parameters, conversation_id}`."""
    if isinstance(raw, dict) and isinstance(raw.get("parameters"), dict) and set(raw) <= _WRAPPER_KEYS:
        return raw["parameters"]
    return raw


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "body"
    code = "invalid_amount" if where == "amount" else "invalid_request"
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return code, f"{where}: {message}"[:200]


def answer(result: TurnResult) -> dict[str, Any]:
    said = " ".join(s.text for s in result.say).strip()
    body: dict[str, Any] = {"say": said, "outcome": result.outcome, "language": result.language}
    if result.proposal:
        body.update({k: v for k, v in result.proposal.items() if k not in ("say", "outcome", "language")})
    for key in ("asked", "rejected", "balance", "committed"):
        value = getattr(result, key)
        if value is not None:
            body[key] = value
    return ToolAnswer.model_validate(body).model_dump(mode="json", exclude_none=True)


async def tool_endpoint(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    spec = TOOLS.get(name)
    if spec is None:
        raise ApiError(404, "unknown_tool", f"no tool named {name[:40]!r}")
    claims = session_claims(request)
    try:
        raw = json.loads(await request.text())
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    try:
        body = spec.model.model_validate(unwrap(raw))
    except ValidationError as exc:
        code, message = _first_error(exc)
        raise ApiError(400, code, message) from None
    if body.session_id is not None and body.session_id != claims.session_id:
        raise ApiError(403, "session_forbidden", "the session token is for another session")
    event = spec.event(body)
    try:
        keep = Keep("tools", name, body.model_dump(mode="json"))
        live = request.app[LIVE_KEY]
        result = await live.turn("tools", claims.session_id, claims.user_id, event, keep=keep)
    except SessionClosed as exc:
        raise closed_error(exc) from None
    except ProfileMissing:
        raise profile_missing() from None
    except TurnsBusy:
        raise ApiError(429, "busy", "too many requests of this session's user waiting; try again") from None
    except DatabaseUnavailable:
        raise ApiError(503, "unavailable", "the service is busy; try again in a moment") from None
    return web.json_response(answer(result), dumps=lambda o: json.dumps(o, default=str))


def setup_tools(app: web.Application) -> None:
    app.router.add_post("/v1/tools/{name}", tool_endpoint)
