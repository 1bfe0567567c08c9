"""The live feed under load: `--streams` (2,000) open `GET /v1/events` streams spread over two `ongea-pesa
serve` processes on one fresh PostgreSQL database, while `--rate` (200) payments a second are committed for
`--seconds` (30) by this process through the ledger (so every event crosses processes: trigger, NOTIFY, each
server's reader, its streams).

Prints, for the payments' `processing` event (the debit every one of the payer's streams must show):
p50/p99/max from the commit returning here to the event arriving at a stream, the events delivered and
missed, the payment rate reached; and the servers' resident memory per open stream (RSS after opening the
streams minus before, over the streams). `--users` (200) payers, each followed by streams / users streams.

    .venv/bin/python bench/events_fanout.py [--streams 2000] [--rate 200] [--seconds 30] [--users 200]

A payment's events are delivered once no older transaction of the database is still open (that is what makes
a resumed stream gap-free), so the confirm's own duration is printed too: delivery waits behind writers.

Client and servers share this machine: the client parses every event of 2,000 streams, so on a small
machine it (and PostgreSQL) compete with the servers for the same cores; the script prints the CPU time each
process used so a shortfall can be put where it belongs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.conv_server import drop, fresh_database, make_users, percentile, serve
from ledger.db import create_pool
from ledger.models import ProposalRequest
from ledger.service import Ledger
from voice_server.loop import run, settle_garbage_collector

MARK = b'"status":"processing"'


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Tally:
    def __init__(self) -> None:
        self.committed: dict[str, float] = {}
        self.early: dict[str, list[float]] = defaultdict(list)  # arrived before the commit was noted
        self.latencies: list[float] = []
        self.delivered: dict[str, int] = defaultdict(int)
        self.confirms: list[float] = []  # seconds each confirm took (a writer others' events wait behind)

    def arrived(self, tx: str, at: float) -> None:
        self.delivered[tx] += 1
        start = self.committed.get(tx)
        if start is None:
            self.early[tx].append(at)
        else:
            self.latencies.append(at - start)

    def commit(self, tx: str, at: float) -> None:
        self.committed[tx] = at
        for when in self.early.pop(tx, ()):
            self.latencies.append(when - at)


async def follow(
    http: aiohttp.ClientSession, base: str, token: str, tally: Tally, opened: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{base}/v1/events", headers=headers, timeout=aiohttp.ClientTimeout(None)) as r:
        assert r.status == 200, await r.text()
        opened.set()
        async for line in r.content:
            if line.startswith(b"data:") and MARK in line and b'"op":"UPDATE"' in line:
                tally.arrived(json.loads(line[5:])["id"], time.monotonic())


async def pay_at_rate(
    dsn: str, users: list[uuid.UUID], rate: float, seconds: float, tally: Tally
) -> tuple[int, int, float]:
    pool = await create_pool(dsn, min_size=10, max_size=30)
    ledger = Ledger(pool)
    done = failed = 0
    reasons: dict[str, int] = {}
    request = ProposalRequest.build(type="buy_goods_till", amount=Decimal("10"), till="123456")

    async def one(user: uuid.UUID) -> None:
        nonlocal done, failed
        try:
            proposal = await ledger.propose(user, request)
            confirming = time.monotonic()
            await ledger.confirm(proposal.id, user, proposal.version, voice_verified=True)
        except Exception as exc:
            failed += 1
            why = getattr(exc, "code", None) or type(exc).__name__
            reasons[str(why)] = reasons.get(str(why), 0) + 1
            return
        now = time.monotonic()
        tally.commit(str(proposal.id), now)
        tally.confirms.append(now - confirming)
        done += 1

    tasks = []
    started = time.monotonic()
    total = int(rate * seconds)
    for i in range(total):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(users[i % len(users)])))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    await pool.close()
    if reasons:
        print("payments refused or failed:", ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    return done, failed, elapsed


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    settle_garbage_collector()

    server, name, dsn = await fresh_database()
    servers = [serve(dsn, ONGEA_DB_POOL_MAX="8"), serve(dsn, ONGEA_DB_POOL_MAX="8")]
    try:
        users = await make_users(dsn, args.users)
        await asyncio.sleep(2)
        before = [rss_kib(s.proc.pid) for s in servers]
        tally = Tally()
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(connector=connector) as http:
            streams = []
            events = []
            for i in range(args.streams):
                token = users[i % len(users)][1]
                opened = asyncio.Event()
                base = servers[i % 2].url
                streams.append(asyncio.create_task(follow(http, base, token, tally, opened)))
                events.append(opened)
                if i % 100 == 99:
                    await asyncio.gather(*(e.wait() for e in events))
            await asyncio.gather(*(e.wait() for e in events))
            await asyncio.sleep(3)
            after = [rss_kib(s.proc.pid) for s in servers]
            cpu_before = [cpu_seconds(s.proc.pid) for s in servers]
            client_before = time.process_time()
            each = args.streams // args.users
            print(f"{args.streams} streams open over 2 servers ({args.users} users, {each} each)")
            per_stream = (sum(after) - sum(before)) / args.streams
            print(
                f"memory: servers {before[0] // 1024}+{before[1] // 1024} MiB -> {after[0] // 1024}+"
                f"{after[1] // 1024} MiB: {per_stream:.1f} KiB per open stream"
            )

            done, failed, elapsed = await pay_at_rate(
                dsn, [u for u, _ in users], args.rate, args.seconds, tally
            )
            await asyncio.sleep(5)  # the stragglers
            per_user = args.streams / args.users
            expected = done * per_user
            got = sum(tally.delivered.values())
            cpu_after = [cpu_seconds(s.proc.pid) for s in servers]
            lat = sorted(tally.latencies)
            rate, missing = done / elapsed, expected - got
            asked = args.rate
            print(f"payments: {done} in {elapsed:.1f}s ({rate:.0f}/s, asked {asked:.0f}/s), {failed} failed")
            print(f"'processing' events delivered: {got} of {expected:.0f} expected ({missing:.0f} missing)")
            if lat:
                p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
                print(f"commit -> delivery: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lat[-1] * 1000:.0f} ms")
            if tally.confirms:
                took = sorted(tally.confirms)
                c50, c99 = percentile(took, 50) * 1000, percentile(took, 99) * 1000
                print(f"ledger confirm (a writer the feed waits behind): p50 {c50:.0f} ms, p99 {c99:.0f} ms")
            print(
                "cpu during the payments: servers "
                + " + ".join(f"{a - b:.1f}s" for a, b in zip(cpu_after, cpu_before, strict=True))
                + f", this client (streams + payments) {time.process_time() - client_before:.1f}s"
                + f", of {elapsed + 5:.0f}s wall on {os.cpu_count()} cores"
            )
            for task in streams:
                task.cancel()
            await asyncio.gather(*streams, return_exceptions=True)
    finally:
        for s in servers:
            s.stop()
        await drop(server, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main()))
