"""How long the whole transcript corpus takes to replay (tests/transcripts plus ../shared/corpus/transcripts):
wall time, transcripts per second and the slowest transcripts. Target: under a minute.

    .venv/bin/python bench/replay_corpus.py [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path

from voice_server.commands.replay import replay_local
from voice_server.settings import Settings

REPO = Path(__file__).resolve().parents[1]
FOLDERS = [REPO / "tests" / "transcripts", REPO.parent / "shared" / "corpus" / "transcripts"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    settings = Settings()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    folders = [str(f) for f in FOLDERS if f.is_dir()]
    started = time.perf_counter()
    reports = asyncio.run(replay_local(folders, settings))
    seconds = time.perf_counter() - started
    count = len(reports)
    print(f"transcripts: {count}, passed: {sum(r.ok for r in reports)}")
    print(f"wall time (database start-up and migration check included): {seconds:.1f} s")
    print(f"replay time: {sum(r.seconds for r in reports):.1f} s, {count / seconds:.1f} transcripts/s")
    for r in sorted(reports, key=lambda r: -r.seconds)[:3]:
        print(f"  slowest: {r.seconds:.2f} s  {Path(r.path).name}")


if __name__ == "__main__":
    main()
