"""Daraja-as-it-behaves tests run on the M-Pesa harness: the simulator and our server over real HTTP, on the
run's real PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mpesa.conftest import client, harness, sim  # noqa: F401 - fixtures shared with tests/mpesa
from tests.mpesa.test_crash import crash_env  # noqa: F401 - the SIGKILL harness
from tests.serving import wait_healthy

ROOT = Path(__file__).parents[2]


class Processes:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "voice_server.cli", *args], env=env, stdout=log, stderr=log, cwd=ROOT
        )
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    yield p
    p.stop()


async def wait_up(url: str, procs: Processes) -> None:
    if not await wait_healthy(url, tries=300, pause=0.1):
        raise AssertionError(f"{url} did not come up\n{procs.logs()}")
