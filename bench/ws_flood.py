"""Another user's `GET /v1/me` while one user floods the conversation WebSocket with turns.

User A opens `--sockets` sessions' WebSockets (40) and sends `--turns` messages on each (30: 1,200 turns)
as fast as the per-socket rate guard lets through, reading whatever comes back; meanwhile user B asks
`GET /v1/me` `--probes` times, one after another. B's p50/p99 are printed alone first (no flood), then
during the flood, with what A's turns got (answers, `busy` errors, sockets the server closed).

    .venv/bin/python bench/ws_flood.py [--sockets 40] [--turns 30] [--probes 300] [--env KEY=VALUE ...]

(`--env ONGEA_WS_MAX_SOCKETS_PER_USER=40` lets all 40 sockets in, to see the turn scheduling alone.)

Uses DATABASE_URL when set, else the embedded PostgreSQL; starts its own `ongea-pesa serve` (from the source
tree this file is in) on a fresh database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.conv_server import drop, fresh_database, make_users, percentile, serve


async def probe(http: aiohttp.ClientSession, url: str, token: str, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"}) as r:
            await r.read()
            assert r.status == 200, r.status
        latencies.append(time.perf_counter() - started)
    return latencies


async def flood_socket(ws_url: str, turns: int, seen: Counter[str], stop: asyncio.Event) -> None:
    try:
        async with websockets.connect(ws_url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "conversation_initiation_client_data"}))

            async def reader() -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    await read_all()

            async def read_all() -> None:
                async for raw in ws:
                    event = json.loads(raw)
                    kind = event["type"]
                    if kind == "ping":
                        await ws.send(
                            json.dumps({"type": "pong", "event_id": event["ping_event"]["event_id"]})
                        )
                    elif kind == "error":
                        seen["error:" + event["error_event"]["code"]] += 1
                    elif kind == "agent_response" and "turn" in event["agent_response_event"]:
                        seen["answered"] += 1

            reading = asyncio.get_running_loop().create_task(reader())
            for _ in range(turns):
                await ws.send(json.dumps({"type": "user_message", "text": "what is my balance"}))
                await asyncio.sleep(0.05)  # under the guard's 20 a second
            await stop.wait()
            reading.cancel()
    except websockets.ConnectionClosed as exc:
        seen[f"closed:{exc.rcvd.code if exc.rcvd else None}"] += 1
    except (OSError, asyncio.CancelledError):
        seen["closed:?"] += 1


async def run(args: argparse.Namespace) -> None:
    server, name, dsn = await fresh_database()
    served = serve(dsn, **dict(kv.split("=", 1) for kv in args.env))
    try:
        (_, flooder), (_, other) = await make_users(dsn, 2)
        async with aiohttp.ClientSession() as http:
            await probe(http, served.url, other, 20)  # warm-up
            alone = await probe(http, served.url, other, args.probes)
            sessions = []
            for _ in range(args.sockets):
                async with http.post(
                    f"{served.url}/v1/sessions", headers={"Authorization": f"Bearer {flooder}"}
                ) as r:
                    sessions.append(await r.json())
            seen: Counter[str] = Counter()
            stop = asyncio.Event()
            flooding = [
                asyncio.get_running_loop().create_task(flood_socket(s["ws_url"], args.turns, seen, stop))
                for s in sessions
            ]
            await asyncio.sleep(1.0)  # the flood is under way
            during = await probe(http, served.url, other, args.probes)
            stop.set()
            await asyncio.gather(*flooding, return_exceptions=True)

        def line(what: str, values: list[float]) -> str:
            p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
            return f"  {what:<28} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({len(values)} requests)"

        print(f"another user's GET /v1/me, {args.sockets} sockets x {args.turns} turns of flood:")
        print(line("alone", alone))
        print(line("during the flood", during))
        print(f"  the flood's turns: {dict(sorted(seen.items()))}")
    finally:
        served.stop()
        await drop(server, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=40)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server, repeatable")
    args: Any = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
