"""Request bodies are read once, by the app's middleware, within a time limit and a size limit. The limit is
64 KiB unless a route asked for more here (an address-book import, a Stripe event)."""

from __future__ import annotations

from aiohttp import web

MAX_BODY_BYTES = 64 * 1024

BODY_LIMITS_KEY = web.AppKey("body_limits", dict[str, int])


def allow_larger_body(app: web.Application, path: str, max_bytes: int) -> None:
    """Lets the route at `path` (its canonical form, as registered) take bodies up to `max_bytes`."""
    app.setdefault(BODY_LIMITS_KEY, {})[path] = max_bytes


def body_limit(request: web.Request, route: str) -> int:
    return request.app.get(BODY_LIMITS_KEY, {}).get(route, MAX_BODY_BYTES)
