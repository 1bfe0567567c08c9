"""How fast C2B callbacks are answered: Daraja gives a validation about 8 s (then applies the ResponseType),
so the answer must stay far below that even with many deposits awaited.

Serves the real application (`create_app` + the M-Pesa routes, real HTTP on 127.0.0.1) on a fresh migrated
database with `--awaited` expected deposits, then posts `--requests` validations (half for awaited references,
half for unknown ones) and as many confirmations (each a new TransID completing an awaited deposit) with
`--concurrency` clients, and prints p50/p99/max of each.

    .venv/bin/python bench/c2b_latency.py [--awaited 2000] [--requests 1000] [--concurrency 16]

Uses DATABASE_URL when set, else the embedded PostgreSQL (pgserver) in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from ledger.db import create_database, create_pool, drop_database, start_embedded
from ledger.migrate import migrate
from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from voice_server.app import AppRunner, create_app
from voice_server.c2b_routes import add_c2b_routes
from voice_server.settings import Settings

SECRET = "bench-callback-secret-" + uuid.uuid4().hex


def _body(ref: str, amount: str = "100.00") -> dict[str, Any]:
    return {
        "TransactionType": "Pay Bill",
        "TransID": "B" + uuid.uuid4().hex[:9].upper(),
        "TransTime": "20261129120000",
        "TransAmount": amount,
        "BusinessShortCode": "600000",
        "BillRefNumber": ref,
        "MSISDN": "2547 ***** 149",
        "FirstName": "BENCH",
    }


def _report(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    p50 = statistics.median(ms)
    print(f"{name:<28} n={len(ms):<6} p50={p50:7.2f} ms  p99={p99:7.2f} ms  max={ms[-1]:7.2f} ms")


async def run(server_dsn: str, awaited: int, requests: int, concurrency: int) -> None:
    name = f"ongea_bench_c2b_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_dsn, name)
    try:
        await migrate(url)
        pool = await create_pool(url, min_size=4, max_size=max(8, concurrency + 4))
        ledger = Ledger(pool)
        refs: list[str] = []
        users = [
            (await create_user(pool, f"2547{i:08d}", balance="0", plan="pro")).user_id for i in range(50)
        ]
        for i in range(awaited):
            user = users[i % len(users)]
            p = await ledger.propose(
                user, ProposalRequest.build(type="bank_to_mpesa", amount="100", bank_code="01")
            )
            refs.append(
                str((await ledger.confirm(p.id, user, p.version, voice_verified=True)).account_reference)
            )
        settings = Settings(data_dir=Path(tempfile.mkdtemp()), mpesa_callback_secret=SECRET)  # type: ignore[arg-type]
        app = create_app(settings, pool)
        add_c2b_routes(app)
        runner = AppRunner(app, settings)
        await runner.setup()
        sock = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/callbacks/{SECRET}/c2b"
        limit = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

            async def post(kind: str, body: dict[str, Any], out: list[float]) -> None:
                async with limit:
                    started = time.perf_counter()
                    async with http.post(f"{base}/{kind}", json=body) as resp:
                        await resp.read()
                        assert resp.status == 200, await resp.text()
                    out.append(time.perf_counter() - started)

            valid: list[float] = []
            bodies = [_body(refs[i % len(refs)] if i % 2 else f"NOPE{i}") for i in range(requests)]
            await asyncio.gather(*(post("validation", b, valid) for b in bodies))
            confirmed: list[float] = []
            bodies = [_body(refs[i]) for i in range(min(requests, len(refs)))]
            await asyncio.gather(*(post("confirmation", b, confirmed) for b in bodies))
        _report("C2B validation", valid)
        _report("C2B confirmation (credit)", confirmed)
        credited = await pool.fetchval("SELECT count(*) FROM c2b_deposits WHERE outcome = 'credited'")
        print(f"credited deposits: {credited} of {len(bodies)}; awaited references: {awaited}")
        await runner.cleanup()
        await pool.close()
    finally:
        await drop_database(server_dsn, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--awaited", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    dsn = os.environ.get("DATABASE_URL") or start_embedded(Path(tempfile.mkdtemp(prefix="ongea-bench-")))
    asyncio.run(run(dsn, args.awaited, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
