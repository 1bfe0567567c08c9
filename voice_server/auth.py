"""Tokens: Supabase-style user tokens (HS256, `aud` = authenticated) and the server's own session tokens.

Both are JWTs (PyJWT); the two kinds use different keys and audiences so one can never pass for the other.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

USER_AUDIENCE = "authenticated"
SESSION_AUDIENCE = "ongea-voice-session"
_ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is missing, forged, expired or of the wrong kind."""


@dataclass(frozen=True)
class SessionClaims:
    session_id: str
    user_id: uuid.UUID
    expires_at: int


def mint_user_token(secret: str, user_id: uuid.UUID, *, ttl_seconds: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": str(user_id),
        "aud": USER_AUDIENCE,
        "role": "authenticated",
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_user_token(secret: str, token: str) -> uuid.UUID:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=USER_AUDIENCE,
            options={"require": ["sub", "exp"]},
        )
        return uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError) as exc:
        raise TokenError(str(exc)) from exc


def mint_session_token(secret: str, session_id: str, user_id: uuid.UUID, expires_at: int) -> str:
    claims = {"sid": session_id, "sub": str(user_id), "aud": SESSION_AUDIENCE, "exp": expires_at}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_session_token(secret: str, token: str) -> SessionClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=SESSION_AUDIENCE,
            options={"require": ["sid", "sub", "exp"]},
        )
        return SessionClaims(str(claims["sid"]), uuid.UUID(str(claims["sub"])), int(claims["exp"]))
    except (jwt.PyJWTError, ValueError) as exc:
        raise TokenError(str(exc)) from exc
