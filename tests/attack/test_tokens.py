"""Forged, expired and foreign tokens against the served API: each is a 401 in JSON, never a user's data."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from .conftest import JWT_SECRET, Client


def _claims(sub: uuid.UUID | str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": str(sub),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
        **extra,
    }


FORGERIES: dict[str, Any] = {
    "alg none": lambda sub: (
        _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(_claims(sub)).encode()) + "."
    ),
    "empty key": lambda sub: _hs256(_claims(sub), b""),
    "short key": lambda sub: jwt.encode(_claims(sub), "a", algorithm="HS256"),
    "other project's key": lambda sub: jwt.encode(_claims(sub), "x" * 48, algorithm="HS256"),
    "HS512 with the right key": lambda sub: jwt.encode(_claims(sub), JWT_SECRET, algorithm="HS512"),
    "wrong audience": lambda sub: jwt.encode(_claims(sub, aud="anon"), JWT_SECRET, algorithm="HS256"),
    "no audience": lambda sub: jwt.encode(
        {k: v for k, v in _claims(sub).items() if k != "aud"}, JWT_SECRET, algorithm="HS256"
    ),
    "expired": lambda sub: jwt.encode(_claims(sub, exp=int(time.time()) - 5), JWT_SECRET, algorithm="HS256"),
    "no exp": lambda sub: jwt.encode(
        {k: v for k, v in _claims(sub).items() if k != "exp"}, JWT_SECRET, algorithm="HS256"
    ),
    "service key (no sub)": lambda sub: jwt.encode(
        {"role": "service_role", "iss": "supabase", "exp": int(time.time()) + 600},
        JWT_SECRET,
        algorithm="HS256",
    ),
    "anon key": lambda sub: jwt.encode(
        {"role": "anon", "iss": "supabase", "exp": int(time.time()) + 600}, JWT_SECRET, algorithm="HS256"
    ),
    "sub not a uuid": lambda sub: jwt.encode(_claims("' OR 1=1 --"), JWT_SECRET, algorithm="HS256"),
    "tampered payload": lambda sub: _swap_payload(sub),
    "garbage": lambda sub: "not.a.token",
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _hs256(claims: dict[str, Any], key: bytes) -> str:
    """Signed by hand: PyJWT itself will not sign with an empty key, an attacker's script will."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(hmac.new(key, head.encode(), hashlib.sha256).digest())


def _swap_payload(sub: uuid.UUID) -> str:
    """A token of another user with the victim's `sub` pasted in: the signature no longer matches."""
    header, _, sig = jwt.encode(_claims(uuid.uuid4()), JWT_SECRET, algorithm="HS256").split(".")
    payload = jwt.encode(_claims(sub), JWT_SECRET, algorithm="HS256").split(".")[1]
    return f"{header}.{payload}.{sig}"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("name", list(FORGERIES))
async def test_a_forged_token_is_401_and_reads_nothing(client: Client, make_user: Any, name: str) -> None:
    victim = await make_user("777.00")
    token = FORGERIES[name](victim.id)
    for method, path in (("GET", "/v1/me"), ("GET", "/v1/contacts"), ("GET", "/v1/transactions")):
        r = await client.call(method, path, token=token)
        assert (r.status, r.content_type, r.body["error"]["code"]) == (
            401,
            "application/json",
            "unauthorized",
        )
        assert "777" not in str(r.body)
    r = await client.call("PATCH", "/v1/me", token=token, json_body={"biometric_enabled": True})
    assert r.status == 401
