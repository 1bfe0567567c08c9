"""Who a request of a voice session acts as (its session token), and the HTTP answer when that session is
closed. Below the session routes: the tool routes answer the same way, and the session routes mount them."""

from __future__ import annotations

from aiohttp import web

from voice_server.appkeys import SESSION_TOKENS_KEY
from voice_server.auth import bearer_token
from voice_server.conversation.driver import SessionClosed
from voice_server.http_errors import ApiError
from voice_server.session_tokens import SessionClaims, SessionTokenError

CLOSED_STATUS = {"forbidden": 403, "not_found": 404, "expired": 401, "ended": 401}


def session_claims(request: web.Request) -> SessionClaims:
    """The session a request acts in, from its session token (`Authorization: Bearer`); 401 otherwise."""
    token = bearer_token(request)
    if token is None:
        header = request.headers.get("Authorization", "").strip()
        token = header or None
    if token is None:
        raise ApiError(401, "unauthorized", "a session token is needed (Authorization: Bearer ...)")
    try:
        return request.app[SESSION_TOKENS_KEY].verify(token)
    except SessionTokenError:
        raise ApiError(401, "unauthorized", "the session token is not valid") from None


def closed_error(exc: SessionClosed) -> ApiError:
    messages = {
        "forbidden": "this session belongs to someone else",
        "not_found": "no such voice session",
        "expired": "this voice session has expired; start a new one",
        "ended": "this voice session has ended; start a new one",
    }
    return ApiError(CLOSED_STATUS.get(exc.code, 401), f"session_{exc.code}", messages.get(exc.code, "closed"))
