"""The phone app's REST API: profile, PIN, contacts, history, plans, payment methods and billing.

Every route takes the user token, and every read and write of the user's rows runs as role `authenticated`
with the token's claims (`ledger.reads.as_user`), so the founding row level security policies confine it to
the user: another user's row is simply not there (404), whatever id or filter is asked for."""

from __future__ import annotations

from aiohttp import web

from voice_server.app_api import billing, contacts, history, me, payment_methods


def setup_app_api(app: web.Application) -> None:
    for module in (me, contacts, history, billing, payment_methods):
        module.setup(app)
