"""`ongea-pesa serve` as a user runs it: a real process, real HTTP, a real database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, "ONGEA_DATA_DIR": str(tmp_path / "data"), "ONGEA_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_server.cli", "serve", "--port", "0", "--database-url", database_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    base = None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and base is None:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            base = match.group(1)
    assert base, "server did not start:\n" + "".join(seen)
    yield base
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


async def test_health_metrics_and_json_errors(served: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{served}/healthz") as r:
            assert r.status == 200
            assert (await r.json())["database"] == "ok"
        async with http.get(f"{served}/no/such/thing") as r:
            assert r.status == 404
            body = await r.json()
            assert body["error"]["code"] == "not_found"
        async with http.get(f"{served}/metrics") as r:
            assert r.status == 200
            text = await r.text()
            assert 'ongea_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
            assert 'status="404"' in text
