"""Latency of the app API over real HTTP, each request under row level security (role `authenticated` and the
user's claims set in its transaction): p50/p99 of GET /v1/me, a GET /v1/transactions page with 1,000
transactions behind it, and the time of one POST /v1/contacts:import of 500 entries.

    .venv/bin/python bench/app_api_latency.py [--requests 300] [--clients 8]

Uses DATABASE_URL when set, else starts the embedded PostgreSQL (pgserver) in a temporary folder. Creates its
own database and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import aiohttp
from aiohttp import web
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.db import create_database, create_pool, drop_database, start_embedded
from ledger.migrate import migrate
from ledger.users import create_user
from voice_server.app import create_app
from voice_server.auth import mint_user_token
from voice_server.settings import Settings

SECRET = "bench-secret-" + "b" * 32


async def timed(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], n: int, clients: int
) -> list[float]:
    took: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            async with http.get(url, headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status
            took.append(time.perf_counter() - started)

    await asyncio.gather(*(worker(n // clients) for _ in range(clients)))
    return took


def report(name: str, took: list[float]) -> None:
    ms = sorted(t * 1000 for t in took)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:<40} n={len(ms):<5} p50={statistics.median(ms):7.2f} ms  p99={p99:7.2f} ms")


async def main(requests: int, clients: int) -> None:
    server = os.environ.get("DATABASE_URL") or start_embedded(
        Path(tempfile.mkdtemp(prefix="ongea-bench-")), delete_on_exit=True
    )
    name = f"ongea_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(server, name)
    try:
        await migrate(url)
        pool = await create_pool(url, min_size=2, max_size=clients + 2)
        user = await create_user(pool, "0712345678", balance=Decimal("100000"), plan="pro")
        await pool.execute(
            """INSERT INTO transactions (user_id, type, amount, phone, status, created_at)
               SELECT $1, 'send_phone', 10 + i % 90, '254711222333', 'cancelled',
                      now() - i * interval '1 minute'
               FROM generate_series(1, 1000) AS i""",
            user.user_id,
        )
        settings = Settings().model_copy(
            update={
                "database_url": url,
                "jwt_secret": SecretStr(SECRET),
                "data_dir": Path(tempfile.mkdtemp()),
            }
        )
        runner = web.AppRunner(create_app(settings, pool), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"
        headers = {"Authorization": "Bearer " + mint_user_token(SECRET, user.user_id, ttl_seconds=600)}
        print(
            f"{requests} requests each, {clients} concurrent clients, PostgreSQL at {server.split('@')[-1]}"
        )
        async with aiohttp.ClientSession() as http:
            await timed(http, f"{base}/v1/me", headers, clients * 5, clients)  # warm the pool
            report("GET /v1/me", await timed(http, f"{base}/v1/me", headers, requests, clients))
            report(
                "GET /v1/transactions?limit=20 (1,000 rows)",
                await timed(http, f"{base}/v1/transactions?limit=20", headers, requests, clients),
            )
            book = {"contacts": [{"name": f"Friend {i}", "phone": f"0720{i:06d}"} for i in range(500)]}
            started = time.perf_counter()
            async with http.post(f"{base}/v1/contacts:import", json=book, headers=headers) as r:
                body = await r.json()
                assert r.status == 201 and len(body["imported"]) == 500, body
            took_ms = 1000 * (time.perf_counter() - started)
            print(f"{'POST /v1/contacts:import (500 entries)':<40} {took_ms:.1f} ms")
        await runner.cleanup()
        await pool.close()
    finally:
        await drop_database(server, name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.clients))
