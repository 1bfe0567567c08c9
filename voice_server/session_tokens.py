"""Session tokens: a JWT per voice session, signed with the server's own key (not the user-token secret), so
a leaked session token is good for one session of one user until its `expires_at` and nothing else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import jwt

SESSION_AUDIENCE = "ongea-pesa-session"
_ALGORITHM = "HS256"


class SessionTokenError(Exception):
    """Forged, expired, malformed or not a session token."""


@dataclass(frozen=True)
class SessionClaims:
    session_id: str
    user_id: uuid.UUID
    expires_at: datetime


def mint_session_token(secret: str, session_id: str, user_id: uuid.UUID, expires_at: datetime) -> str:
    claims = {
        "sid": session_id,
        "sub": str(user_id),
        "aud": SESSION_AUDIENCE,
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_session_token(secret: str, token: str) -> SessionClaims:
    """The claims of a genuine, unexpired session token; only HS256 is accepted (never `none`)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=SESSION_AUDIENCE,
            options={"require": ["sid", "sub", "exp", "aud"]},
        )
        session_id = claims["sid"]
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 200:
            raise SessionTokenError("bad session id")
        return SessionClaims(
            session_id, uuid.UUID(str(claims["sub"])), datetime.fromtimestamp(int(claims["exp"])).astimezone()
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise SessionTokenError(str(exc)) from exc
