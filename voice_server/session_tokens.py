"""Session tokens: a JWT per voice session, signed with the server's own key (not the user-token secret), so
a leaked session token is good for one session of one user until its `expires_at` and nothing else."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
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


class SessionTokens:
    """The server's session tokens: minted and verified with one secret (read once, when first needed), and
    the genuine ones remembered for a short while. A session sends the same token every turn, and checking
    its signature and claims again cost more than the rest of a tool call's parsing. Only a token that
    verified is remembered, never past its own `exp` (nor `ttl_seconds`), so an expired token is refused
    exactly as before; an ended session is refused by the driver, which reads the session row every turn."""

    def __init__(
        self,
        secret: Callable[[], str],
        *,
        ttl_seconds: float = 60.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._read_secret = secret
        self._secret: str | None = None
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._verified: OrderedDict[str, tuple[SessionClaims, float]] = OrderedDict()

    @property
    def secret(self) -> str:
        if self._secret is None:
            self._secret = self._read_secret()
        return self._secret

    def mint(self, session_id: str, user_id: uuid.UUID, expires_at: datetime) -> str:
        return mint_session_token(self.secret, session_id, user_id, expires_at)

    def verify(self, token: str) -> SessionClaims:
        """As `verify_session_token`, from memory when this token verified less than `ttl_seconds` ago."""
        now = self._clock()
        hit = self._verified.get(token)
        if hit is not None:
            claims, good_until = hit
            if now < good_until:
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims = verify_session_token(self.secret, token)
        # PyJWT accepts a token while now < exp; so does the memory.
        self._verified[token] = (claims, min(now + self._ttl, claims.expires_at.timestamp()))
        while len(self._verified) > self._max:
            self._verified.popitem(last=False)
        return claims
