"""The server's M-Pesa side as its own OS process, for the crash tests: callback routes, top-ups and the
background service (payout worker, reconciliation), configured like production from the environment.

Run as `python tests/mpesa/crash_server.py`; `ONGEA_FAULT` (see `ledger.faults.fault_point`) makes it
SIGKILL itself at a chosen point.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ledger.db import create_pool
from voice_server.app import create_app
from voice_server.mpesa_routes import setup_mpesa
from voice_server.settings import Settings


async def main() -> None:
    settings = Settings()
    assert settings.database_url, "DATABASE_URL is required"
    pool = await create_pool(settings.database_url, min_size=1, max_size=10)
    app = create_app(settings, pool)
    setup_mpesa(app, poll_interval=0.05, lease_seconds=1.0)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    print("READY", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await pool.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
