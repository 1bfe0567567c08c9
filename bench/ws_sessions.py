"""Idle WebSocket sessions and concurrent conversations on a real server, beside a raw aiohttp echo server
measured the same way in the same run (client and servers on this machine).

1. Memory: `--idle` (5,000) sessions minted and connected (each greeted, each answering pings), the server's
   resident memory before and after, per session; the same number of idle connections to the echo server.
2. Conversations: `--conversations` (200) of them at once for `--seconds` (60), each repeating "pay till
   123456 10" (a read-back) then a tap on Confirm (a committed payment): turns per second and p50/p99 from
   sending the `user_message` / `client_tool_result` to the first `agent_response`. The echo server gets as
   many clients sending a message and waiting for its echo.

   `--think S` pauses each conversation about S seconds between turns (a person hearing the read-back and
   answering); 0, the default, sends the next turn at once: a closed loop that measures the server saturated.
   The first `--warmup` (5) seconds of conversations are not measured: the server has just taken 5,000
   sessions, and their objects' first trip through the garbage collector is a one-time cost of start-up.

    .venv/bin/python bench/ws_sessions.py [--idle 5000] [--conversations 200] [--seconds 60] [--think 0]

Client and servers run on uvloop with the garbage collector settled as `ongea-pesa serve` does
(`voice_server.loop`): the client holds 5,200 connections too, and its own full collections (up to 450 ms)
would otherwise be counted as the server's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import websockets
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.conv_server import Served, drop, fresh_database, make_users, percentile, serve
from voice_server.loop import run, settle_garbage_collector

# -- the raw aiohttp echo server (run in its own process by this script) ---------------------------------


def echo_server_main() -> None:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=64 * 1024)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/echo", echo)

    async def run_echo() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        settle_garbage_collector()
        await asyncio.Event().wait()

    run(run_echo())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- idle connections --------------------------------------------------------------------------------------


async def keep_answering(ws: websockets.ClientConnection) -> None:
    """An idle client: reads what comes and answers pings, as the app would."""
    try:
        async for raw in ws:
            event = json.loads(raw)
            if event.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong", "event_id": event["ping_event"]["event_id"]}))
    except websockets.ConnectionClosed:
        pass


async def mint_sessions(url: str, tokens: list[str], count: int) -> list[dict[str, Any]]:
    sem = asyncio.Semaphore(32)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(i: int) -> dict[str, Any]:
            async with sem:
                headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
                async with http.post(f"{url}/v1/sessions", headers=headers) as r:
                    assert r.status == 201, await r.text()
                    return dict(await r.json())

        return await asyncio.gather(*(one(i) for i in range(count)))


async def open_conversation(ws_url: str) -> websockets.ClientConnection:
    """Connected and greeted (up to the end of the greeting turn)."""
    ws = await websockets.connect(ws_url, max_size=None, open_timeout=60)
    await ws.send(json.dumps({"type": "conversation_initiation_client_data", "dynamic_variables": {}}))
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == "agent_response" and "turn" in event["agent_response_event"]:
            return ws


async def connect_all(
    urls: list[str], opener: Any, concurrency: int = 64
) -> list[websockets.ClientConnection]:
    sem = asyncio.Semaphore(concurrency)

    async def one(u: str) -> websockets.ClientConnection:
        async with sem:
            return await opener(u)

    return await asyncio.gather(*(one(u) for u in urls))


# -- conversations -----------------------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.turns = 0
        self.payments = 0
        self.errors = 0
        self.measure_from = 0.0  # time.monotonic(): turns sent before it are the warm-up


async def converse(
    ws: websockets.ClientConnection, deadline: float, stats: Stats, think: float = 0.0
) -> None:
    async def turn(frame: dict[str, Any]) -> list[dict[str, Any]]:
        measured = time.monotonic() >= stats.measure_from
        sent = time.perf_counter()
        await ws.send(json.dumps(frame))
        events, first = [], None
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == "ping":
                await ws.send(json.dumps({"type": "pong", "event_id": event["ping_event"]["event_id"]}))
                continue
            events.append(event)
            if event["type"] == "agent_response" and first is None:
                first = time.perf_counter() - sent
            if event["type"] == "agent_response" and "turn" in event["agent_response_event"]:
                if measured:
                    stats.latencies.append(first if first is not None else time.perf_counter() - sent)
                    stats.turns += 1
                return events

    async def pause() -> None:
        if think > 0:
            await asyncio.sleep(think * random.uniform(0.5, 1.5))

    await pause()  # the conversations do not all start in the same instant
    while time.monotonic() < deadline:
        events = await turn({"type": "user_message", "text": "pay till 123456 10"})
        await pause()
        cards = [
            e["client_tool_call"]["tool_call_id"]
            for e in events
            if e["type"] == "client_tool_call" and e["client_tool_call"]["tool_name"] == "show_proposal"
        ]
        if not cards:
            stats.errors += 1
            continue
        measured = time.monotonic() >= stats.measure_from
        events = await turn({"type": "client_tool_result", "tool_call_id": cards[-1], "result": "confirm"})
        if events[-1]["agent_response_event"]["turn"]["outcome"] != "committed":
            stats.errors += 1
        elif measured:
            stats.payments += 1
        await pause()


async def echo_clients(url: str, clients: int, seconds: float) -> Stats:
    stats = Stats()
    conns = [await websockets.connect(url) for _ in range(clients)]
    deadline = time.monotonic() + seconds

    async def loop(ws: websockets.ClientConnection) -> None:
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            await ws.send('{"type": "user_message", "text": "pay till 123456 10"}')
            await ws.recv()
            stats.latencies.append(time.perf_counter() - sent)
            stats.turns += 1

    await asyncio.gather(*(loop(c) for c in conns))
    await asyncio.gather(*(c.close() for c in conns))
    return stats


def report(name: str, stats: Stats, seconds: float) -> None:
    print(
        f"  {name:<12} {stats.turns / seconds:>9.1f}/s  p50 {percentile(stats.latencies, 50) * 1000:>7.1f} ms"
        f"  p99 {percentile(stats.latencies, 99) * 1000:>7.1f} ms"
        + (
            f"  ({stats.payments / seconds:.1f} payments/s, {stats.errors} not committed)"
            if stats.payments
            else ""
        )
    )


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=0.0, help="seconds between a conversation's turns")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of conversations not measured")
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3]  # noqa: ASYNC240
    print(f"load average at start: {' '.join(load)} (2 cores; client and servers on this machine)")

    echo = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, __file__, "--echo-server"], stdout=subprocess.PIPE, text=True
    )
    assert echo.stdout is not None
    echo_url = f"ws://127.0.0.1:{echo.stdout.readline().strip()}/echo"
    server_dsn, name, dsn = await fresh_database()
    served: Served | None = None
    try:
        # Echo: idle memory.
        warm = [await websockets.connect(echo_url) for _ in range(20)]
        before = rss_kib(echo.pid)
        idle_echo = await connect_all(
            [echo_url] * args.idle, lambda u: websockets.connect(u, open_timeout=60)
        )
        await asyncio.sleep(1)
        echo_per = (rss_kib(echo.pid) - before) / args.idle
        await asyncio.gather(*(c.close() for c in idle_echo + warm))

        # Ours: idle memory.
        served = serve(dsn)
        users = await make_users(dsn, max(args.conversations, 1))
        tokens = [t for _, t in users]
        started = time.monotonic()
        sessions = await mint_sessions(served.url, tokens, args.idle + 20)
        mint_rate = len(sessions) / (time.monotonic() - started)
        warm_ws = await connect_all([s["ws_url"] for s in sessions[:20]], open_conversation)
        before = served.rss_kib()
        started = time.monotonic()
        idle = await connect_all([s["ws_url"] for s in sessions[20:]], open_conversation)
        connect_rate = len(idle) / (time.monotonic() - started)
        readers = [asyncio.get_running_loop().create_task(keep_answering(ws)) for ws in idle + warm_ws]
        settle_garbage_collector()
        await asyncio.sleep(1)
        ours_per = (served.rss_kib() - before) / args.idle
        print(
            f"idle sessions: {args.idle} (minted {mint_rate:.0f}/s, "
            f"connected and greeted {connect_rate:.0f}/s)"
        )
        print(
            f"  memory per idle session: ours {ours_per:.1f} KiB (aim < 50 KB), "
            f"raw aiohttp echo {echo_per:.1f} KiB"
        )
        print(f"  server RSS with {args.idle} idle sessions: {served.rss_kib() / 1024:.0f} MiB")

        # Conversations, with the idle sessions still open.
        conv_sessions = await mint_sessions(served.url, tokens, args.conversations)
        conns = await connect_all([s["ws_url"] for s in conv_sessions], open_conversation)
        stats = Stats()
        stats.measure_from = time.monotonic() + args.warmup
        deadline = stats.measure_from + args.seconds
        await asyncio.gather(*(converse(ws, deadline, stats, args.think) for ws in conns))
        echo_stats = await echo_clients(echo_url, args.conversations, min(args.seconds, 20))
        print(
            f"{args.conversations} concurrent conversations, {args.seconds:.0f} s after {args.warmup:g} s of "
            f"warm-up, think {args.think:g} s (user_message -> agent_response):"
        )
        report("ours", stats, args.seconds)
        report("aiohttp echo", echo_stats, min(args.seconds, 20))
        await asyncio.gather(*(c.close() for c in conns))
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in idle + warm_ws), return_exceptions=True)
    finally:
        if served is not None:
            served.stop()
        echo.terminate()
        await drop(server_dsn, name)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--echo-server"]:
        echo_server_main()
    else:
        sys.exit(run(main()))
