"""`ongea-pesa serve`: the HTTP/WebSocket server on embedded defaults unless configured otherwise."""

from __future__ import annotations

import argparse
import logging
import socket

from aiohttp import web

from voice_server.app import AppRunner, create_app
from voice_server.commands.arg_types import port_number
from voice_server.loop import settle_garbage_collector, until_signal
from voice_server.mpesa_routes import setup_mpesa
from voice_server.runtime import database, refuse_exposed_grants, run_long_running
from voice_server.settings import Settings
from voice_server.startup_errors import StartupError
from voice_server.sweeper import setup_sweeper
from voice_server.ws.live import LIVE_KEY

log = logging.getLogger("ongea_pesa")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the server")
    p.add_argument("--host", help="listen address (default ONGEA_HOST or 127.0.0.1)")
    p.add_argument("--port", type=port_number, help="listen port (default ONGEA_PORT or 8080)")
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL, else the embedded database)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.database_url:
        overrides["database_url"] = args.database_url
    return run_long_running("serve", serve, overrides=overrides)


async def serve(settings: Settings) -> None:
    # Bind first: with port 0 the real port must be known before the M-Pesa service builds its callback URLs.
    try:
        sock = socket.create_server((settings.host, settings.port), reuse_port=False)
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        raise StartupError(f"cannot listen on {where}: {exc.strerror or exc} (pick another --port)") from None
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    async with database(settings) as pool:
        await refuse_exposed_grants(pool, settings)
        app = create_app(settings, pool)
        setup_mpesa(app)
        setup_sweeper(app)
        runner = AppRunner(app, settings)
        await runner.setup()
        try:
            site = web.SockSite(runner, sock)
            await site.start()
            for address in runner.addresses:
                log.info("Ongea Pesa listening on http://%s:%s", address[0], address[1])
            settle_garbage_collector()
            await until_signal()
            log.info("shutting down: no new sessions; finishing the turns in flight")
            await app[LIVE_KEY].shut_down()
        finally:
            await runner.cleanup()
