"""Payments per second through the agent tools of a real server, beside pgbench on the same PostgreSQL.

A payment = `POST /v1/tools/propose_transaction` then `POST /v1/tools/confirm_transaction` (HTTP, session
token, one driver turn each, four round trips to PostgreSQL (tests/server_conv/test_round_trips.py): BEGIN,
the session row locked with the user's facts, the ledger's hold (then debit + outbox row), the dialogue state
and the turn's record stored with the COMMIT),
from `--sessions` concurrent sessions (each its own user), for `--seconds`. Then `pgbench -b tpcb-like` with
as many clients for as long, on a fresh pgbench database on the same server, in the same run.

    .venv/bin/python bench/server_throughput.py [--seconds 20] [--sessions 8]

Uses DATABASE_URL when set, else the embedded PostgreSQL. Starts its own `ongea-pesa serve`; the payout
worker pays through the local M-Pesa simulator meanwhile, as in production. Also prints the CPU a payment
costs the server, PostgreSQL and this client (from /proc), and the same two ledger statements driven by
pgbench with no server at all: the ceiling any server on this database could reach. The server is stopped
before pgbench runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.conv_server import METRICS_TOKEN, drop, fresh_database, make_users, percentile, serve
from bench.ledger_throughput import pgbench_binary, pgbench_rate
from ledger.db import create_database, drop_database
from voice_server.loop import run

NO_PIN = {
    "ONGEA_PIN_THRESHOLD": "250000",
    "ONGEA_NO_PIN_COUNT": str(10**9),
    "ONGEA_NO_PIN_AMOUNT": str(10**9),
}
PAYMENT = {"type": "buy_goods_till", "amount": "10", "till": "123456"}


async def run_payments(
    url: str, tokens: list[str], seconds: float, measuring: Callable[[], Awaitable[None]]
) -> tuple[int, int, list[float]]:
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
        await measuring()
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client(s) for s in sessions))
        return done, refused, latencies


async def mean_turn_seconds(url: str) -> float:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", headers=headers) as r:
        text = await r.text()
    values = {}
    for line in text.splitlines():
        if line.startswith(("ongea_turn_seconds_sum", "ongea_turn_seconds_count")):
            name, value = line.split()
            values[name] = float(value)
    return values.get("ongea_turn_seconds_sum", 0.0) / max(values.get("ongea_turn_seconds_count", 0.0), 1.0)


# The ledger's own two statements of a payment (the tools' propose and confirm, each its own transaction),
# driven by pgbench from its client number's wallet: what the database alone does, with no server.
LEDGER_SCRIPT = """\\set n :client_id
BEGIN;
SELECT u.id AS uid, (r.tx).id AS txid, (r.tx).version AS ver
FROM (SELECT id FROM profiles ORDER BY id OFFSET :n LIMIT 1) u,
     ledger_propose_or_refusal(u.id, 'buy_goods_till', 10, NULL, '123456', NULL, NULL, NULL, NULL, NULL, 90,
                               'lipa till 123456 shilingi kumi', 'pgbench', now(), 120) r \\gset
COMMIT;
BEGIN;
SELECT refusal FROM ledger_confirm_or_refusal(:txid, :uid, :ver, true, now());
COMMIT;
"""


async def ledger_alone_rate(binary: str, dsn: str, clients: int, seconds: float) -> tuple[float, int]:
    """Payments per second of LEDGER_SCRIPT, and how many the ledger refused (expected 0)."""
    script = Path(tempfile.mkdtemp(prefix="ongea-bench-")) / "payment.sql"
    script.write_text(LEDGER_SCRIPT)
    before = await count_status(dsn, "processing")
    rate, processed = pgbench_rate(binary, dsn, clients, seconds, ("-n", "-M", "prepared", "-f", str(script)))
    return rate, processed - (await count_status(dsn, "processing") - before)


async def count_status(dsn: str, status: str) -> int:
    """Transactions in `status` now."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM transactions WHERE status = $1", status))
    finally:
        await conn.close()


class CpuMeter:
    """CPU seconds spent over a window by the server process, the PostgreSQL backends of its database and
    this client, read from /proc (the database's share only when PostgreSQL runs on this machine)."""

    def __init__(self, server_pid: int, dsn: str) -> None:
        self.server_pid, self.dsn = server_pid, dsn
        self.start: dict[str, float] = {}
        self.spent: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    async def _read(self) -> dict[str, float]:
        conn = await asyncpg.connect(self.dsn)
        try:
            pids = await conn.fetch(
                """SELECT pid FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()"""
            )
        finally:
            await conn.close()
        client = os.times()
        figures = {"server": _cpu_of(self.server_pid), "client": client.user + client.system}
        figures.update(_io_of(self.server_pid))
        figures.update({f"postgres {r['pid']}": _cpu_of(r["pid"]) for r in pids})
        return figures

    async def begin(self) -> None:
        self.start = await self._read()

    async def end(self) -> None:
        now = await self._read()
        # (A backend that closed during the window took its CPU with it: the sum is then a lower bound.)
        spent = {k: v - self.start.get(k, 0.0) for k, v in now.items()}
        self.spent = {k: v for k, v in spent.items() if not k.startswith("postgres ")}
        self.calls = {k: int(self.spent.pop(k)) for k in ("writes", "reads") if k in self.spent}
        self.spent["postgres"] = sum(v for k, v in spent.items() if k.startswith("postgres "))


def _io_of(pid: int) -> dict[str, float]:
    """The server's write() and read() system calls so far (/proc/PID/io: its sockets to PostgreSQL and to
    the clients, and its log): unlike CPU time, a count the machine's load does not change."""
    try:
        fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    except OSError:
        return {}
    return {"writes": float(fields["syscw"]), "reads": float(fields["syscr"])}


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    # The gate asks no PIN (a person would type one after a few payments: the bench measures the payments'
    # pace, as tests/daraja/test_throttle_storm.py does); serve writes these into ledger_rules, which the
    # ledger-alone run below then finds too.
    served = serve(dsn, **NO_PIN)
    stopped = False
    try:
        users = await make_users(dsn, args.sessions)
        meter = CpuMeter(served.proc.pid, dsn)
        done, refused, latencies = await run_payments(
            served.url, [t for _, t in users], args.seconds, meter.begin
        )
        await meter.end()
        turn_mean = await mean_turn_seconds(served.url)
        # Payouts settled by M-Pesa (the simulator) during the run; the rest wait their turn at the worker's
        # rate cap (ONGEA_PAYOUT_RATE_PER_SECOND), as they would at Daraja's.
        settled = await count_status(dsn, "completed")
        rate = done / args.seconds
        # The server (and its payout worker) stops before pgbench runs: pgbench gets the machine to itself.
        served.stop()
        stopped = True
        alone, alone_refused = await ledger_alone_rate(binary, dsn, args.sessions, args.seconds)
        subprocess.run([binary, "-i", "-q", pgbench_dsn], capture_output=True, text=True, check=True)  # noqa: ASYNC221
        tps, _ = pgbench_rate(binary, pgbench_dsn, args.sessions, args.seconds)
        print(f"{args.sessions} sessions, {args.seconds:.0f} s each; server and clients on this machine")
        print(f"payments through the tools: {rate:.1f}/s ({done} committed, {refused} refused)")
        print(
            f"  propose+confirm round trip: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.1f} ms"
        )
        print(f"  server-side time per turn (driver + database, /metrics): mean {turn_mean * 1000:.1f} ms")
        per = {k: v / max(done, 1) * 1000 for k, v in meter.spent.items()}
        print(
            f"  CPU per payment: server {per['server']:.2f} ms, PostgreSQL {per['postgres']:.2f} ms (the "
            f"backends of this database; payouts included), this client {per['client']:.2f} ms"
        )
        if meter.calls:
            writes, reads = (meter.calls[k] / max(done, 1) for k in ("writes", "reads"))
            print(f"  server system calls per payment: write {writes:.1f}, read {reads:.1f} (payouts too)")
        print(f"  paid out through the M-Pesa simulator meanwhile: {settled} (warm-up included)")
        print(
            f"the ledger's SQL alone (propose and confirm as two transactions through pgbench, "
            f"{args.sessions} clients, no server): {alone:.1f} payments/s ({alone_refused} refused)"
        )
        print(f"pgbench tpcb-like, {args.sessions} clients: {tps:.1f} tps")
        print(f"ratio: {rate / tps:.2f} (aim 0.5); the ledger's SQL alone: {alone / tps:.2f}")
        print(
            f"payments through the tools / the ledger's SQL alone: {rate / max(alone, 1e-9):.2f} (aim 0.4); "
            f"server CPU per payment {per['server']:.2f} ms (aim 1.5); load average at the end: "
            f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}"  # noqa: ASYNC240
        )
    finally:
        if not stopped:
            served.stop()
        await drop(server_dsn, name)
        await drop_database(server_dsn, bench_db)
    return 0


if __name__ == "__main__":
    sys.exit(run(main()))
