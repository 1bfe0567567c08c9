"""Mounts every route of the app API on the server's application."""

from __future__ import annotations

from aiohttp import web

from voice_server.app_api import (
    analytics,
    api_keys,
    billing,
    business,
    contacts,
    history,
    me,
    payment_methods,
    receipt,
)


def setup_app_api(app: web.Application) -> None:
    for module in (me, contacts, history, billing, payment_methods, receipt, analytics, api_keys, business):
        module.setup(app)
