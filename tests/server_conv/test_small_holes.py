"""Small holes, against a real `ongea-pesa serve`: a genuine token of a user without a profile gets 403
`profile_missing` on every route (never a 500); the page's Content-Security-Policy lets WebSockets reach only
this server; `ws_url` never copies the request's `Host`; `/metrics` needs its token."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import websockets

from tests.server_conv.conftest import (
    JWT_SECRET,
    METRICS_HEADERS,
    MakeUser,
    Server,
    server_env,
)
from tests.server_conv.wsclient import mint
from tests.serving import ServeProcess
from voice_server.auth import mint_user_token

# Every route a user token opens, with a body that would be valid for a user with a profile.
USER_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/me", None),
    ("PATCH", "/v1/me", {"biometric_enabled": True}),
    ("PUT", "/v1/me/pin", {"pin": "8642"}),
    ("GET", "/v1/contacts", None),
    ("POST", "/v1/contacts", {"name": "Mary Wambui", "phone": "254733444555"}),
    ("POST", "/v1/contacts:import", {"contacts": [{"name": "Mary Wambui", "phone": "0733444555"}]}),
    ("GET", "/v1/contacts/{id}", None),
    ("PATCH", "/v1/contacts/{id}", {"nickname": "Mama"}),
    ("DELETE", "/v1/contacts/{id}", None),
    ("GET", "/v1/transactions", None),
    ("GET", "/v1/transactions/{id}", None),
    ("GET", "/v1/balance-history", None),
    ("GET", "/v1/topups/{id}", None),
    ("POST", "/v1/topups", {"amount": 500}),
    ("GET", "/v1/payment-methods", None),
    ("POST", "/v1/payment-methods", {"type": "mpesa", "phone": "254712345678"}),
    ("DELETE", "/v1/payment-methods/{id}", None),
    ("GET", "/v1/plans", None),
    ("POST", "/v1/subscription", {"plan": "free"}),
    ("POST", "/v1/sessions", None),
    ("GET", "/v1/convai/conversation/get-signed-url", None),
]


async def _no_profile_user(pool: asyncpg.Pool) -> tuple[uuid.UUID, str]:
    """A signed-up user (auth.users) whose profile was never made, as Supabase has them: one who signed up by
    e-mail (the sign-up trigger of sql/0022 makes a wallet only for a phone)."""
    user_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO auth.users (id, email) VALUES ($1, $2)", user_id, f"{user_id}@example.com"
    )
    assert await pool.fetchval("SELECT count(*) FROM profiles WHERE id = $1", user_id) == 0
    return user_id, mint_user_token(JWT_SECRET, user_id, ttl_seconds=3600)


async def test_a_user_without_a_profile_gets_403_profile_missing_on_every_route(
    server: Server, pool: asyncpg.Pool
) -> None:
    _, token = await _no_profile_user(pool)
    headers = {"Authorization": f"Bearer {token}", "xi-api-key": token}
    seen: dict[str, tuple[int, str]] = {}
    async with aiohttp.ClientSession() as http:
        for method, path, body in USER_ROUTES:
            url = server.url + path.replace("{id}", str(uuid.uuid4()))
            async with http.request(method, url, headers=headers, json=body) as r:
                answer = await r.json()
                seen[f"{method} {path}"] = (r.status, answer["error"]["code"] if "error" in answer else "")
    # (The top-up route, the M-Pesa side's, answers its own clear 404 `user_not_found`.)
    expected = {
        k: (404, "user_not_found") if k == "POST /v1/topups" else (403, "profile_missing") for k in seen
    }
    wrong = {k: v for k, v in seen.items() if v != expected[k]}
    assert not wrong, json.dumps(wrong)
    assert "Traceback" not in server.output()


async def test_a_session_whose_profile_is_gone_gets_403_on_tools_and_websocket(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    user = await make_user()
    session = await mint(server.url, user.token)
    await pool.execute("DELETE FROM profiles WHERE id = $1", user.user_id)
    headers = {"Authorization": f"Bearer {session['session_token']}"}
    async with aiohttp.ClientSession() as http:
        for name, body in (
            ("get_balance", {}),
            ("parse_command", {"text": "send 500 to mama"}),
            ("propose_transaction", {"type": "send_phone", "amount": "500", "recipient": "Mama"}),
        ):
            async with http.post(
                f"{server.url}/v1/tools/{name}",
                headers=headers,
                json={"session_id": session["session_id"], **body},
            ) as r:
                answer = await r.json()
                assert (r.status, answer.get("error", {}).get("code")) == (403, "profile_missing"), (
                    name,
                    answer,
                )
        # The history tool reads only the user's own (now empty) history: a plain answer, never a 500.
        async with http.post(
            f"{server.url}/v1/tools/recent_transactions",
            headers=headers,
            json={"session_id": session["session_id"]},
        ) as r:
            assert r.status in (200, 403), await r.text()
    async with websockets.connect(session["ws_url"]) as ws:
        await ws.send(json.dumps({"type": "conversation_initiation_client_data"}))
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(30):
                while True:
                    await ws.recv()
    assert (ws.close_code, ws.close_reason) == (1008, "profile_missing")
    assert "Traceback" not in server.output()


async def test_the_page_lets_websockets_reach_only_this_server(server: Server) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/") as r:
        csp = r.headers["Content-Security-Policy"]
    connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()[1:]
    assert connect == ["'self'", server.ws], csp


async def test_ws_url_never_copies_the_host_header(server: Server, make_user: MakeUser) -> None:
    user = await make_user()
    forged = {**user.headers, "Host": "evil.example:443", "X-Forwarded-Host": "evil.example"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/sessions", headers=forged) as r:
            assert r.status == 201
            ws_url = (await r.json())["ws_url"]
        async with http.get(
            f"{server.url}/v1/convai/conversation/get-signed-url?agent_id=a",
            headers={"xi-api-key": user.token, "Host": "evil.example"},
        ) as r:
            signed = (await r.json())["signed_url"]
    assert ws_url.startswith(server.ws + "/v1/convai/conversation?"), ws_url
    assert signed.startswith(server.ws + "/v1/convai/conversation?"), signed


async def test_metrics_need_the_metrics_token(server: Server, database_url: str, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Bearer "}):
            async with http.get(f"{server.url}/metrics", headers=headers) as r:
                assert r.status == 401 and "ongea_" not in await r.text()
        async with http.get(f"{server.url}/metrics", headers=METRICS_HEADERS) as r:
            assert r.status == 200 and "ongea_http_requests_total" in await r.text()
    # Without ONGEA_METRICS_TOKEN nobody reads them.
    env = {k: v for k, v in server_env(tmp_path).items() if k != "ONGEA_METRICS_TOKEN"}
    plain = await asyncio.to_thread(ServeProcess, ["--database-url", database_url], env, limit=60)
    try:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, METRICS_HEADERS):
                async with http.get(f"{plain.base}/metrics", headers=headers) as r:
                    assert r.status == 403 and (await r.json())["error"]["code"] == "metrics_disabled"
    finally:
        assert await asyncio.to_thread(plain.stop) == 0


async def test_pin_changes_are_rate_limited_per_user(server: Server, make_user: MakeUser) -> None:
    """10 PIN changes per user in 10 minutes (ONGEA_PIN_CHANGE_RATE_LIMIT): a flood of 30 at once gets
    429 `rate_limited` past them, and another user can still change theirs."""
    user, other = await make_user(pin=None), await make_user(pin=None)
    async with aiohttp.ClientSession() as http:

        async def change(who: Any, pin: str) -> int:
            async with http.put(f"{server.url}/v1/me/pin", headers=who.headers, json={"pin": pin}) as r:
                body = await r.json()
                # 400: a second change needs the first PIN; 409: a first PIN racing the one that was set
                assert r.status in (200, 400, 409, 429), body
                if r.status == 429:
                    assert body["error"]["code"] == "rate_limited"
                return r.status

        statuses = await asyncio.gather(*(change(user, "8642") for _ in range(30)))
        assert statuses.count(429) == 20, statuses
        assert await change(other, "8642") == 200
