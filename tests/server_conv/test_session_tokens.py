"""Session tokens remembered after a genuine one verified: never past the token's own expiry, never a forged
one, and a bounded memory."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from voice_server.session_tokens import SessionTokenError, SessionTokens, mint_session_token

SECRET = "test-session-secret-0123456789abcdef0123456789"


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    tokens = SessionTokens(lambda: SECRET)
    user = uuid.uuid4()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    token = tokens.mint("vs_short", user, expires)
    first = tokens.verify(token)
    assert (first.session_id, first.user_id) == ("vs_short", user)
    assert tokens.verify(token) == first  # from memory
    time.sleep(max(0.0, expires.timestamp() - time.time()) + 0.2)
    with pytest.raises(SessionTokenError):
        tokens.verify(token)
    with pytest.raises(SessionTokenError):
        tokens.verify(token)


def test_a_forged_token_is_refused_every_time_even_beside_a_remembered_one() -> None:
    tokens = SessionTokens(lambda: SECRET)
    user = uuid.uuid4()
    expires = datetime.now(UTC) + timedelta(minutes=5)
    genuine = tokens.mint("vs_a", user, expires)
    assert tokens.verify(genuine).session_id == "vs_a"
    forged = mint_session_token("another-secret-0123456789abcdef0123456789ab", "vs_a", user, expires)
    unsigned = jwt.encode(
        {"sid": "vs_a", "sub": str(user), "aud": "ongea-pesa-session", "exp": int(expires.timestamp())},
        key=None,
        algorithm="none",
    )
    for bad in (forged, unsigned, genuine + "x", genuine[:-2], ""):
        for _ in range(2):
            with pytest.raises(SessionTokenError):
                tokens.verify(bad)


def test_the_memory_is_bounded_and_the_secret_read_once() -> None:
    reads: list[int] = []

    def secret() -> str:
        reads.append(1)
        return SECRET

    now = [1_000.0]
    tokens = SessionTokens(secret, max_entries=3, ttl_seconds=60, clock=lambda: now[0])
    expires = datetime.now(UTC) + timedelta(minutes=5)
    minted = [tokens.mint(f"vs_{i}", uuid.uuid4(), expires) for i in range(10)]
    for token in minted:
        tokens.verify(token)
    assert len(tokens._verified) == 3 and reads == [1]
    # Past its time in memory a token is checked again (and still verifies: it has not expired).
    now[0] += 61
    assert tokens.verify(minted[-1]).session_id == "vs_9"
