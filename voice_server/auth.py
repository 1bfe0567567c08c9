"""User tokens: Supabase-style JWTs (HS256 with the project's JWT secret, `sub` = auth.users.id,
`aud` = authenticated), through PyJWT."""

from __future__ import annotations

import time
import uuid

import jwt

USER_AUDIENCE = "authenticated"
_ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is missing, forged, expired or not a user token."""


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
