"""Minting and ending voice sessions: `POST /v1/sessions`, the ElevenLabs-shaped
`GET /v1/convai/conversation/get-signed-url`, and `DELETE /v1/sessions/{id}`.

The driver writes the `voice_sessions` row; this module adds the session token (and, when an ElevenLabs
agent is configured, ElevenLabs' own signed URL and WebRTC token, from the official SDK's async client).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import asyncpg
import httpx
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.business import Wallet, wallet_for
from ledger.models import LedgerError
from voice_server.appkeys import METRICS_KEY, POOL_KEY, SESSION_TOKENS_KEY, SETTINGS_KEY
from voice_server.auth import profile_missing, request_user
from voice_server.conversation.driver import SessionClosed, SessionDriver
from voice_server.http_errors import ApiError
from voice_server.session_access import closed_error, session_claims
from voice_server.session_tokens import SessionClaims, SessionTokens
from voice_server.settings import Settings
from voice_server.tools.routes import setup_tools
from voice_server.webhooks import setup_webhooks
from voice_server.ws.handler import conversation_ws
from voice_server.ws.live import LIVE_KEY, UNAVAILABLE, Live, UserTurns

if TYPE_CHECKING:
    from elevenlabs.client import AsyncElevenLabs

log = logging.getLogger(__name__)

# A user token cannot fill the database with sessions (a phone has one voice button): the count and the new
# row are made under the profile's row lock, so concurrent mints cannot pass the cap together.
_ACTIVE_SESSIONS = """
    SELECT count(*) FROM voice_sessions WHERE user_id = $1 AND status = 'active' AND expires_at > now()
"""
_LOCK_PROFILE = "SELECT id FROM profiles WHERE id = $1 FOR UPDATE"


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    language: Literal["en", "sw"] | None = Field(
        default=None, description="the language the assistant starts in (default: the user's)"
    )
    business_id: uuid.UUID | None = Field(
        default=None,
        description="the business wallet this session speaks for (the user must be a member); default: "
        "the user's own wallet",
    )


class SessionWallet(BaseModel):
    id: uuid.UUID
    business: bool = Field(description="a business wallet (sql/0028) rather than the user's own")
    name: str | None = Field(description="the business's display name (white label)")
    colour: str | None = Field(description="the business's colour, #rrggbb (white label)")
    role: str | None = Field(description="the user's role in the business: owner, admin, spender, viewer")


class ElevenLabsSession(BaseModel):
    agent_id: str
    signed_url: str = Field(description="ElevenLabs' signed WebSocket URL for this conversation")
    conversation_token: str | None = Field(description="WebRTC token for ElevenLabs' mobile and web SDKs")


class SessionCreated(BaseModel):
    session_id: str
    session_token: str = Field(description="JWT for this session only: the WebSocket and the tools take it")
    ws_url: str = Field(description="this server's conversation WebSocket, session token included")
    expires_at: datetime
    elevenlabs: ElevenLabsSession | None = Field(description="null unless an ElevenLabs agent is configured")
    wallet: SessionWallet | None = Field(default=None, description="the wallet the session speaks for")


class SignedUrl(BaseModel):
    signed_url: str = Field(description="ws(s)://HOST/v1/convai/conversation?...&conversation_signature=...")


class SessionEnded(BaseModel):
    session_id: str
    status: Literal["ended", "expired"]


def _public_base(request: web.Request, settings: Settings) -> str:
    """ONGEA_PUBLIC_URL, else the address this server listens on: never the request's `Host` header, which
    the client writes (a forged one would send the app's session token to another server)."""
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    parsed = urllib.parse.urlparse(base.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parsed.scheme, parsed.scheme)
    return urllib.parse.urlunparse(parsed._replace(scheme=scheme))


def _ws_url(request: web.Request, settings: Settings, token: str, agent_id: str | None = None) -> str:
    params = ([("agent_id", agent_id)] if agent_id else []) + [("conversation_signature", token)]
    return f"{_public_base(request, settings)}/v1/convai/conversation?{urllib.parse.urlencode(params)}"


class ElevenLabsSessions:
    """ElevenLabs' signed URL and WebRTC token for the configured agent, from one SDK client for the
    process (its HTTP connections kept, reused and closed with the app), not one client per session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: AsyncElevenLabs | None = None
        self._http: httpx.AsyncClient | None = None

    def _sdk(self) -> AsyncElevenLabs:
        if self._client is None:
            from elevenlabs.client import AsyncElevenLabs  # (the SDK loads only where an agent is configured)

            assert self.settings.elevenlabs_api_key is not None
            self._http = httpx.AsyncClient(timeout=10, follow_redirects=True)
            kwargs: dict[str, Any] = {}
            if self.settings.elevenlabs_base_url:
                kwargs["base_url"] = self.settings.elevenlabs_base_url
            self._client = AsyncElevenLabs(
                api_key=self.settings.elevenlabs_api_key.get_secret_value(),
                httpx_client=self._http,
                timeout=10,  # (the SDK's own default, 240 s, would override the client's)
                **kwargs,
            )
        return self._client

    async def new(self) -> ElevenLabsSession | None:
        """None when no agent is configured or ElevenLabs cannot be reached (the app then talks to this
        server's own WebSocket)."""
        if self.settings.elevenlabs_api_key is None or not self.settings.elevenlabs_agent_id:
            return None
        conversations = self._sdk().conversational_ai.conversations
        agent = self.settings.elevenlabs_agent_id
        try:
            signed = await conversations.get_signed_url(agent_id=agent)
            webrtc = await conversations.get_webrtc_token(agent_id=agent)
        except Exception as exc:  # the SDK raises its own ApiError, httpx errors, timeouts...
            log.warning("ElevenLabs did not give a signed URL (%s): the session has none", type(exc).__name__)
            return None
        token = webrtc.token
        return ElevenLabsSession(agent_id=agent, signed_url=signed.signed_url, conversation_token=token)

    async def close(self, _app: web.Application | None = None) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = self._client = None


ELEVENLABS_KEY = web.AppKey("elevenlabs_sessions", ElevenLabsSessions)


async def _mint(
    request: web.Request,
    language: str | None,
    *,
    elevenlabs: bool,
    business_id: uuid.UUID | None = None,
    chosen: list[Wallet] | None = None,
) -> tuple[SessionClaims, str, ElevenLabsSession | None]:
    """A new session; with `elevenlabs`, also ElevenLabs' own signed URL when an agent is configured (the
    ElevenLabs-shaped get-signed-url answers with this server's URL only, so it does not ask ElevenLabs)."""
    user_id = request_user(request)
    live = request.app[LIVE_KEY]
    if not live.accepting:
        raise ApiError(503, "shutting_down", "this server is restarting; try again")
    pool = request.app[POOL_KEY]
    cap = request.app[SETTINGS_KEY].sessions_per_user
    try:
        # A first look without a lock: a user over the cap does not get an ElevenLabs URL made for nothing.
        over = await pool.fetchval(_ACTIVE_SESSIONS, user_id) >= cap
    except UNAVAILABLE:
        raise ApiError(503, "unavailable", "the service is busy; try again in a moment") from None
    if over:
        raise ApiError(429, "too_many_sessions", "too many open voice sessions; end one or wait")
    eleven = await request.app[ELEVENLABS_KEY].new() if elevenlabs else None
    try:
        async with pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(_LOCK_PROFILE, user_id) is None:
                raise profile_missing()
            if await conn.fetchval(_ACTIVE_SESSIONS, user_id) >= cap:
                raise ApiError(429, "too_many_sessions", "too many open voice sessions; end one or wait")
            try:
                wallet = await wallet_for(conn, user_id, business_id)
            except LedgerError:
                raise ApiError(404, "not_found", "no such business") from None
            if chosen is not None:
                chosen.append(wallet)
            # The driver's insert, on this transaction's connection (it only calls `fetchval`).
            info = await SessionDriver(cast(asyncpg.Pool, conn), live.driver.settings).start_session(
                user_id,
                agent_id=eleven.agent_id if eleven else "ongea-pesa",
                language=language,
                signed_url=eleven.signed_url if eleven else None,
                wallet_id=wallet.id,
            )
    except UNAVAILABLE:
        log.warning("POST /v1/sessions: database unavailable", exc_info=True)
        raise ApiError(503, "unavailable", "the service is busy; try again in a moment") from None
    claims = SessionClaims(str(info.session_id), user_id, info.expires_at)
    token = request.app[SESSION_TOKENS_KEY].mint(claims.session_id, user_id, info.expires_at)
    return claims, token, eleven


async def create_session(request: web.Request) -> web.Response:
    body: object = {}
    # (`body_exists`, not `can_read_body`: the middleware has read the body already, so nothing is left to
    # read and `can_read_body` is false; the language asked for was ignored.)
    if request.body_exists:
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    try:
        wanted = SessionCreate.model_validate(body if body is not None else {})
    except ValidationError:
        raise ApiError(400, "invalid_request", "language is en or sw; business_id is a UUID") from None
    chosen: list[Wallet] = []
    claims, token, eleven = await _mint(
        request, wanted.language, elevenlabs=True, business_id=wanted.business_id, chosen=chosen
    )
    wallet = chosen[0]
    created = SessionCreated(
        session_id=claims.session_id,
        session_token=token,
        ws_url=_ws_url(request, request.app[SETTINGS_KEY], token),
        expires_at=claims.expires_at,
        elevenlabs=eleven,
        wallet=SessionWallet(
            id=wallet.id,
            business=wallet.is_business,
            name=wallet.name or None,
            colour=wallet.colour or None,
            role=wallet.role or None,
        ),
    )
    return web.json_response(created.model_dump(mode="json"), status=201)


async def get_signed_url(request: web.Request) -> web.Response:
    agent_id = request.query.get("agent_id", "")[:200] or None
    _, token, _ = await _mint(request, None, elevenlabs=False)
    url = _ws_url(request, request.app[SETTINGS_KEY], token, agent_id)
    return web.json_response(SignedUrl(signed_url=url).model_dump())


async def delete_session(request: web.Request) -> web.Response:
    """Ended by its own session token, or by its owner's user token."""
    session_id = request.match_info["session_id"]
    try:
        claims: SessionClaims | None = session_claims(request)
    except ApiError:
        claims = None
    if claims is not None and claims.session_id == session_id:
        user_id = claims.user_id
    else:
        user_id = request_user(request)
    live = request.app[LIVE_KEY]
    status: Literal["ended", "expired"] = "ended"
    try:
        await live.driver.end_session(session_id, user_id, "ended")
    except SessionClosed as exc:
        if exc.code not in ("ended", "expired"):
            raise closed_error(exc) from None
        status = "ended" if exc.code == "ended" else "expired"
    await live.close_session_sockets(session_id, 1000, "session ended")
    return web.json_response(SessionEnded(session_id=session_id, status=status).model_dump())


def setup_sessions(app: web.Application) -> None:
    """The driver, the live-conversation state and every conversation route (sessions, WebSocket, tools)."""
    settings = app[SETTINGS_KEY]
    driver = SessionDriver(app[POOL_KEY], settings)
    app[SESSION_TOKENS_KEY] = SessionTokens(settings.session_token_secret)
    app[LIVE_KEY] = Live(
        driver=driver,
        metrics=app[METRICS_KEY],
        pool=app[POOL_KEY],
        max_sockets_per_user=settings.ws_max_sockets_per_user,
        turns=UserTurns(settings.turns_per_user, settings.turns_waiting_per_user),
    )

    async def watch_sessions(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(
            app[LIVE_KEY].watch_sessions(settings.ws_session_check_seconds), name="ws-session-watch"
        )
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(watch_sessions)
    app[ELEVENLABS_KEY] = ElevenLabsSessions(app[SETTINGS_KEY])
    app.on_cleanup.append(app[ELEVENLABS_KEY].close)
    app.router.add_post("/v1/sessions", create_session)
    app.router.add_delete("/v1/sessions/{session_id}", delete_session)
    app.router.add_get("/v1/convai/conversation/get-signed-url", get_signed_url)
    app.router.add_get("/v1/convai/conversation", conversation_ws)
    setup_tools(app)
    setup_webhooks(app)
