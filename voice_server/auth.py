"""User tokens: Supabase-style JWTs (HS256 with the project's JWT secret, `sub` = auth.users.id,
`aud` = authenticated), through PyJWT."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any, NamedTuple

import jwt
from aiohttp import web

from voice_server.appkeys import SETTINGS_KEY
from voice_server.http_errors import ApiError

USER_AUDIENCE = "authenticated"
USER_ROLE = "authenticated"
# The longest life a user token may have (exp - iat); tokens we print live ONGEA_USER_TOKEN_TTL_SECONDS.
MAX_TOKEN_LIFE_SECONDS = 30 * 24 * 3600
_ALGORITHM = "HS256"
# request[API_KEY_USER]: the owner of the API key the request was authenticated with (app_api/api_keys.py).
API_KEY_USER = web.RequestKey("api_key_user", uuid.UUID)


class TokenError(Exception):
    """The token is missing, forged, expired or not a user token."""


def mint_user_token(secret: str, user_id: uuid.UUID, *, ttl_seconds: int, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": str(user_id),
        "aud": USER_AUDIENCE,
        "role": USER_ROLE,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_user_token(
    secret: str, token: str, *, max_life_seconds: int = MAX_TOKEN_LIFE_SECONDS
) -> uuid.UUID:
    """The user of a valid user token. Beyond signature, audience and expiry, the token must say
    `role: authenticated` (a `service_role` or `anon` token signed with the same Supabase secret is not a
    user) and have a bounded life: `exp - iat` at most `max_life_seconds` (a 100-year token is refused)."""
    return user_claims(secret, token, max_life_seconds=max_life_seconds).user_id


class UserClaims(NamedTuple):
    user_id: uuid.UUID
    signed_in_at: float


def _signed_in_at(claims: dict[str, Any]) -> float:
    """When the person last proved who they are. Supabase issues a new token (a new `iat`) at every refresh
    for as long as the session lasts, so `iat` says nothing of a sign-in; its `amr` timestamps (and an
    OpenID `auth_time`) stay those of the sign-in. Our own tokens have neither: each is minted as a sign-in.
    Never later than `iat`: a sign-in cannot come after the token it produced."""
    issued = float(claims["iat"])
    amr = claims.get("amr")
    stamps = [m.get("timestamp") for m in amr if isinstance(m, dict)] if isinstance(amr, list) else []
    stamps.append(claims.get("auth_time"))
    numbers = [n for n in map(_seconds, stamps) if n is not None]
    return min(max(numbers), issued) if numbers else issued


def _seconds(value: object) -> float | None:
    """A timestamp claim as seconds, or None for anything else (a bool, a string, 1e400, an int too large)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def user_claims(secret: str, token: str, *, max_life_seconds: int = MAX_TOKEN_LIFE_SECONDS) -> UserClaims:
    """`verify_user_token`, with when the person signed in (a fresh sign-in is asked for the first PIN)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=USER_AUDIENCE,
            options={"require": ["sub", "exp", "iat"]},
        )
        if claims.get("role") != USER_ROLE:
            raise TokenError("the token's role is not 'authenticated'")
        life = claims["exp"] - claims["iat"]
        if not isinstance(life, (int, float)) or life <= 0 or life > max_life_seconds:
            raise TokenError("the token's life is not bounded")
        return UserClaims(uuid.UUID(str(claims["sub"])), _signed_in_at(claims))
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenError(str(exc)) from exc


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer ...`, or of `xi-api-key` (what the ElevenLabs SDKs send)."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("xi-api-key") or None


def request_user(request: web.Request) -> uuid.UUID:
    """The user a request acts for, from its user token (or an API key checked by api_keys' middleware); a
    missing or bad token is a 401 `ApiError`."""
    if API_KEY_USER in request:
        return request[API_KEY_USER]
    return request_claims(request).user_id


def request_claims(request: web.Request) -> UserClaims:
    """The request's user token, verified (a 401 `ApiError` if missing or bad); API keys have none."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "unauthorized", "a user token is needed (Authorization: Bearer ...)")
    try:
        settings = request.app[SETTINGS_KEY]
        max_life = max(settings.user_token_ttl_seconds, 3600)
        return user_claims(settings.user_jwt_secret(), token, max_life_seconds=max_life)
    except TokenError:
        raise ApiError(401, "unauthorized", "the token is not valid") from None


def profile_missing() -> ApiError:
    """A genuine token of a user who has no profile (on Supabase, everyone who signed up before the profile
    was made): a clear 403 on every route, never a 500."""
    return ApiError(403, "profile_missing", "this user has no Ongea Pesa profile yet; finish signing up")
