"""User tokens: what we mint verifies; forged, expired, wrong-audience or garbage tokens are refused."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from voice_server.auth import TokenError, mint_user_token, verify_user_token

SECRET = "a-test-secret-long-enough-for-every-hmac-variant-0123456789abcdef"


def test_minted_token_verifies_to_its_user() -> None:
    user = uuid.uuid4()
    assert verify_user_token(SECRET, mint_user_token(SECRET, user, ttl_seconds=60)) == user


@pytest.mark.parametrize(
    "token",
    [
        mint_user_token("another-secret-entirely-0123456789abcdef", uuid.uuid4(), ttl_seconds=60),
        mint_user_token(SECRET, uuid.uuid4(), ttl_seconds=60, now=time.time() - 3600),
        jwt.encode({"sub": str(uuid.uuid4()), "aud": "anon", "exp": time.time() + 60}, SECRET),
        jwt.encode(
            {"sub": "'; DROP TABLE profiles; --", "aud": "authenticated", "exp": time.time() + 60}, SECRET
        ),
        jwt.encode(
            {"sub": str(uuid.uuid4()), "aud": "authenticated", "exp": time.time() + 60}, SECRET, "HS512"
        ),
        jwt.encode({"aud": "authenticated", "exp": time.time() + 60}, SECRET),
        "not.a.token",
        "",
    ],
    ids=[
        "forged",
        "expired",
        "wrong-audience",
        "sql-in-sub",
        "other-algorithm",
        "no-sub",
        "garbage",
        "empty",
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(TokenError):
        verify_user_token(SECRET, token)
