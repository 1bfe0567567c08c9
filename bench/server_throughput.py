"""Payments per second through the agent tools of a real server, beside pgbench on the same PostgreSQL.

A payment = `POST /v1/tools/propose_transaction` then `POST /v1/tools/confirm_transaction` (HTTP, session
token, one driver turn each: session row locked, dialogue state stored, ledger hold then debit + outbox row),
from `--sessions` concurrent sessions (each its own user), for `--seconds`. Then `pgbench -b tpcb-like` with
as many clients for as long, on a fresh pgbench database on the same server, in the same run.

    .venv/bin/python bench/server_throughput.py [--seconds 20] [--sessions 8]

Uses DATABASE_URL when set, else the embedded PostgreSQL. Starts its own `ongea-pesa serve`; the payout
worker pays through the local M-Pesa simulator meanwhile, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.conv_server import drop, fresh_database, make_users, percentile, serve
from bench.ledger_throughput import pgbench_binary, pgbench_rate
from ledger.db import create_database, drop_database
from voice_server.loop import run

PAYMENT = {"type": "buy_goods_till", "amount": "10", "till": "123456"}


async def run_payments(url: str, tokens: list[str], seconds: float) -> tuple[int, int, list[float]]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sessions = []
        for token in tokens:
            async with http.post(f"{url}/v1/sessions", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 201, await r.text()
                sessions.append(await r.json())
        done = refused = 0
        latencies: list[float] = []
        deadline = 0.0

        async def client(session: dict[str, str]) -> None:
            nonlocal done, refused
            headers = {"Authorization": f"Bearer {session['session_token']}"}
            sid = session["session_id"]
            while time.monotonic() < deadline:
                started = time.perf_counter()
                async with http.post(
                    f"{url}/v1/tools/propose_transaction",
                    json={"session_id": sid, **PAYMENT},
                    headers=headers,
                ) as r:
                    proposed = await r.json()
                if r.status != 200 or "proposal_id" not in proposed:
                    refused += 1
                    continue
                body = {
                    "session_id": sid,
                    "proposal_id": proposed["proposal_id"],
                    "version": proposed["version"],
                }
                async with http.post(f"{url}/v1/tools/confirm_transaction", json=body, headers=headers) as r:
                    confirmed = await r.json()
                if r.status == 200 and confirmed.get("outcome") == "committed":
                    done += 1
                    latencies.append(time.perf_counter() - started)
                else:
                    refused += 1

        deadline = time.monotonic() + 2  # warm-up
        await asyncio.gather(*(client(s) for s in sessions))
        done = refused = 0
        latencies.clear()
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client(s) for s in sessions))
        return done, refused, latencies


async def mean_turn_seconds(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
        text = await r.text()
    values = {}
    for line in text.splitlines():
        if line.startswith(("ongea_turn_seconds_sum", "ongea_turn_seconds_count")):
            name, value = line.split()
            values[name] = float(value)
    return values.get("ongea_turn_seconds_sum", 0.0) / max(values.get("ongea_turn_seconds_count", 0.0), 1.0)


async def paid_out(dsn: str) -> int:
    """Payouts settled by M-Pesa (the simulator) during the run; the rest wait their turn at the worker's
    rate cap (ONGEA_PAYOUT_RATE_PER_SECOND), as they would at Daraja's."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM transactions WHERE status = 'completed'"))
    finally:
        await conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sessions", type=int, default=8)
    args = parser.parse_args()

    load = Path("/proc/loadavg").read_text().split()[:3]  # noqa: ASYNC240
    print(f"load average at start: {' '.join(load)} (2 cores; client, server and pgbench on this machine)")
    server_dsn, name, dsn = await fresh_database()
    bench_db = f"ongea_pgbench_{uuid.uuid4().hex[:8]}"
    pgbench_dsn = await create_database(server_dsn, bench_db)
    binary = pgbench_binary()
    served = serve(dsn)
    try:
        users = await make_users(dsn, args.sessions)
        done, refused, latencies = await run_payments(served.url, [t for _, t in users], args.seconds)
        turn_mean = await mean_turn_seconds(served.url)
        settled = await paid_out(dsn)
        rate = done / args.seconds
        subprocess.run([binary, "-i", "-q", pgbench_dsn], capture_output=True, text=True, check=True)  # noqa: ASYNC221
        tps = pgbench_rate(binary, pgbench_dsn, args.sessions, args.seconds)
        print(f"{args.sessions} sessions, {args.seconds:.0f} s each; server and clients on this machine")
        print(f"payments through the tools: {rate:.1f}/s ({done} committed, {refused} refused)")
        print(
            f"  propose+confirm round trip: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.1f} ms"
        )
        print(f"  server-side time per turn (driver + database, /metrics): mean {turn_mean * 1000:.1f} ms")
        print(f"  paid out through the M-Pesa simulator meanwhile: {settled} (warm-up included)")
        print(f"pgbench tpcb-like, {args.sessions} clients: {tps:.1f} tps")
        print(f"ratio: {rate / tps:.2f} (aim 0.5)")
    finally:
        served.stop()
        await drop(server_dsn, name)
        await drop_database(server_dsn, bench_db)
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
