"""The aiohttp application: routes, error handling, metrics and the background services' lifetimes."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from importlib.metadata import version

import asyncpg
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ledger.rules import write_rules
from voice_server.app_api.routes import setup_app_api
from voice_server.appkeys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from voice_server.bodies import MAX_BODY_BYTES, body_limit
from voice_server.events_routes import setup_events
from voice_server.http_errors import ApiError, json_error
from voice_server.log_redaction import RedactSecrets as RedactSecrets  # also importable from here, as before
from voice_server.metrics import Metrics
from voice_server.openapi import build_openapi
from voice_server.page_routes import add_page_routes
from voice_server.session_routes import setup_sessions
from voice_server.session_turns import setup_session_turns
from voice_server.settings import Settings

log = logging.getLogger(__name__)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Path segments that are secrets (the callback secret): never written to a log.
_SECRET_PATH = re.compile(r"^(/v1/(?:callbacks|mpesa))/[^/]+")


def redact_path(path: str) -> str:
    """The request path as it may be logged: the callback secret replaced by `***`."""
    return _SECRET_PATH.sub(r"\1/***", path)


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON, every failure a clean 4xx/5xx without a stack trace, every request counted;
    a request body must arrive within ONGEA_HTTP_READ_TIMEOUT_SECONDS (a slow-body client gets 408)."""
    metrics = request.app[METRICS_KEY]
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    started = time.perf_counter()
    try:
        if request.can_read_body:
            limit = body_limit(request, route)
            if limit != MAX_BODY_BYTES:
                request = request.clone(client_max_size=limit)
            try:
                async with asyncio.timeout(request.app[SETTINGS_KEY].http_read_timeout_seconds):
                    await request.read()  # kept by aiohttp: the handler's read() and json() reuse it
            except TimeoutError:
                timed_out = json_error(408, "request_timeout", "the request body did not arrive in time")
                timed_out.force_close()  # the rest of the body is not waited for
                metrics.http_requests.labels(request.method, route, "408").inc()
                return timed_out
        response = await handler(request)
    except ApiError as exc:
        response = json_error(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.empty_body or exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        response = json_error(exc.status, code, exc.reason if exc.status != 413 else "request body too large")
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, redact_path(request.path))
        response = json_error(500, "internal_error", "something went wrong on our side")
    metrics.http_requests.labels(request.method, route, str(response.status)).inc()
    metrics.http_latency.labels(route).observe(time.perf_counter() - started)
    return response


async def healthz(request: web.Request) -> web.Response:
    pool = request.app[POOL_KEY]
    try:
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError):
        # The reason stays in our log: a database error names hosts, users and settings.
        log.warning("healthz: database unavailable", exc_info=True)
        return web.json_response({"status": "unavailable", "database": "unavailable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


_PAYOUT_GAUGES = """
    SELECT o.status, count(*) AS n, count(*) FILTER (
               WHERE t.status = 'processing' AND t.confirmed_at < now() - interval '1 hour') AS stuck
    FROM payout_outbox o JOIN transactions t ON t.id = o.transaction_id
    GROUP BY o.status
"""


def _metrics_allowed(request: web.Request) -> None:
    """/metrics tells an outsider how busy the server is and how payouts fare: only a scraper holding
    ONGEA_METRICS_TOKEN (`Authorization: Bearer ...`) reads it; without the setting nobody does."""
    token = request.app[SETTINGS_KEY].metrics_token
    if token is None or not token.get_secret_value().strip():  # (an empty token would open it to all)
        raise ApiError(403, "metrics_disabled", "set ONGEA_METRICS_TOKEN to let a scraper read /metrics")
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "/metrics needs Authorization: Bearer ONGEA_METRICS_TOKEN")


async def metrics_endpoint(request: web.Request) -> web.Response:
    _metrics_allowed(request)
    metrics = request.app[METRICS_KEY]
    try:
        rows = await request.app[POOL_KEY].fetch(_PAYOUT_GAUGES, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        log.warning("metrics: payout gauges not refreshed (database unavailable)")
    else:
        counts = {r["status"]: r["n"] for r in rows}
        for status in ("pending", "sent", "settled", "dead"):
            metrics.payouts.labels(status).set(counts.get(status, 0))
        metrics.payouts_stuck.set(sum(r["stuck"] for r in rows))
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_endpoint(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(version("ongea-pesa")))


def create_app(settings: Settings, pool: asyncpg.Pool) -> web.Application:
    """The application over an open pool; the caller owns the pool and the background services."""
    app = web.Application(middlewares=[errors_and_metrics], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS_KEY] = settings
    app[POOL_KEY] = pool
    app[METRICS_KEY] = Metrics()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/openapi.json", openapi_endpoint)
    setup_app_api(app)
    setup_events(app)
    add_page_routes(app)
    setup_sessions(app)
    app.on_startup.append(_write_gate_rules)
    setup_session_turns(app)
    return app


async def _write_gate_rules(app: web.Application) -> None:
    """The ledger decides who may spend with the numbers of these settings (`ledger_rules`). A database
    that cannot be reached at start-up does not stop the server (`/healthz` says so); the ledger then keeps
    the numbers it holds, and nothing can be paid until it is back anyway."""
    try:
        await write_rules(app[POOL_KEY], app[SETTINGS_KEY].gate_rules())
    except (OSError, asyncpg.PostgresError) as exc:
        log.warning(
            "the PIN rules of the settings could not be written to the ledger: %s", type(exc).__name__
        )


class _JsonErrorHandler(RequestHandler):
    """aiohttp answers what it cannot parse (a header over 8 KiB, a broken request line) itself, in plain
    text; this answers it in the API's one error shape instead."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises if a response was under way
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        text = "the request could not be read (malformed, or headers too large)" if status < 500 else phrase
        response = json_error(status, phrase.lower().replace(" ", "_"), text)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """The runner of the server: JSON errors even from aiohttp's own parser, and a connection that has not
    sent a whole request within ONGEA_HTTP_READ_TIMEOUT_SECONDS (half-open, slow headers) is closed."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        timeout = settings.http_read_timeout_seconds
        super().__init__(app, access_log=None, keepalive_timeout=timeout, lingering_time=timeout)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server
