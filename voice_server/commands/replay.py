"""`ongea-pesa replay FILE_OR_DIR... [--database-url URL] [--json]`: replays conversation transcripts
(shared/spec/transcripts.md) and prints one line per transcript and a summary; exit 0 only when all pass.

Locally (the default) each transcript runs against a fresh user through the session driver, the dialogue,
the ledger and the M-Pesa simulator with the server's own payout worker. A replayer that drives a running
server instead (`--server URL`) plugs in through `voice_server.conversation.replay.Replayer`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from voice_server.conversation.replay import Report, local_replayer, replay_files, summary
from voice_server.loop import run as run_loop
from voice_server.runtime import command_settings, database
from voice_server.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="replay conversation transcripts and check what they expect")
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="transcript files or folders of *.yaml")
    p.add_argument("--database-url", help="PostgreSQL URL (default DATABASE_URL, else the embedded database)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of report lines")
    p.add_argument("--server", metavar="URL", help="drive a running server over its WebSocket instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pgserver").setLevel(logging.ERROR)
    settings = command_settings(args.database_url)
    started = time.perf_counter()
    if args.server:
        from voice_server.replay_ws import replay_server

        reports = run_loop(replay_server(args.paths, args.server, settings))
    else:
        reports = run_loop(replay_local(args.paths, settings))
    return report(reports, time.perf_counter() - started, as_json=args.json)


async def replay_local(paths: list[str], settings: Settings) -> list[Report]:
    async with database(settings, max_size=10) as pool:
        async with local_replayer(pool, settings) as replayer:
            return await replay_files(paths, replayer)


def report(reports: list[Report], seconds: float, *, as_json: bool) -> int:
    """Print the reports; the exit status is 0 only when every transcript passed."""
    ok = bool(reports) and all(r.ok for r in reports)
    if as_json:
        print(
            json.dumps(
                {
                    "ok": ok,
                    "passed": sum(r.ok for r in reports),
                    "failed": sum(not r.ok for r in reports),
                    "seconds": round(seconds, 2),
                    "transcripts": [r.as_json() for r in reports],
                },
                ensure_ascii=False,
            )
        )
    else:
        for r in reports:
            print(r.line())
        if not reports:
            print("no transcripts found", file=sys.stderr)
        print(summary(reports, seconds))
    return 0 if ok else 1
