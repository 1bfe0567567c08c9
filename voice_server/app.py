"""The aiohttp application: routes, error handling, metrics and the background services' lifetimes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from voice_server.appkeys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from voice_server.http_errors import ApiError, json_error
from voice_server.metrics import Metrics
from voice_server.openapi import build_openapi
from voice_server.page_routes import add_page_routes
from voice_server.session_routes import setup_sessions
from voice_server.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON, every failure a clean 4xx/5xx without a stack trace, every request counted."""
    metrics = request.app[METRICS_KEY]
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    started = time.perf_counter()
    try:
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
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = json_error(500, "internal_error", "something went wrong on our side")
    metrics.http_requests.labels(request.method, route, str(response.status)).inc()
    metrics.http_latency.labels(route).observe(time.perf_counter() - started)
    return response


async def healthz(request: web.Request) -> web.Response:
    pool = request.app[POOL_KEY]
    try:
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return web.json_response({"status": "unavailable", "database": str(exc)[:200]}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


_PAYOUT_GAUGES = """
    SELECT o.status, count(*) AS n, count(*) FILTER (
               WHERE t.status = 'processing' AND t.confirmed_at < now() - interval '1 hour') AS stuck
    FROM payout_outbox o JOIN transactions t ON t.id = o.transaction_id
    GROUP BY o.status
"""


async def metrics_endpoint(request: web.Request) -> web.Response:
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
    add_page_routes(app)
    setup_sessions(app)
    return app
