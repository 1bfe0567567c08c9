"""`ongea-pesa serve` started the way a person starts it, for the tests that need the real process: a free
port, its output drained (and kept) on a thread so it never blocks, stopped with SIGTERM.

Also the crash tests' server (`FaultProcess`), which is killed at a fault point and restarted on its port, and
`wait_healthy`, the wait for a started process's `/healthz`."""

from __future__ import annotations

import asyncio
import inspect
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import aiohttp


class ServeProcess:
    """`ongea-pesa serve` as a person runs it; its output is drained (and kept) so it never blocks."""

    def __init__(self, args: list[str], env: dict[str, str], *, limit: float = 120) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voice_server.cli", "serve", "--port", "0", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = threading.Event()
        self.base = ""

        def drain() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                match = re.search(r"listening on (http://\S+)", line)
                if match and not self.base:
                    self.base = match.group(1)
                    found.set()
            found.set()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        found.wait(limit)
        if not self.base:
            self.stop()
            raise AssertionError("server did not start:\n" + self.log())

    def log(self) -> str:
        return "".join(self.lines[-80:])

    def output(self) -> str:
        """Everything it printed so far; once it has exited, to its last line (the drain is waited for)."""
        if self.proc.poll() is not None:
            self._drain.join(timeout=10)
        return "".join(self.lines)

    def stop(self) -> int:
        """SIGTERM, then its exit status (killed if it takes longer than 40 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain.join(timeout=10)
        return self.proc.returncode


async def wait_healthy(
    url: str, *, tries: int, pause: float, proc: subprocess.Popen[bytes] | None = None
) -> bool:
    """GET `url` every `pause` seconds until it answers 200 (True). False after `tries` tries, or as soon as
    `proc` has exited (a crash test's process may kill itself at its fault point before it is up)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(tries):
            if proc is not None and proc.poll() is not None:
                return False
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(pause)
    return False


@dataclass
class FaultProcess:
    """A server process a crash test arms with `ONGEA_FAULT`, so it SIGKILLs itself at that point, and then
    starts again on the same port and log file. Not `ServeProcess`: a start must accept a process that dies
    before it is up, and the restart must keep the URL its callbacks were registered with."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    _: KW_ONLY
    base: str
    start_tries: int
    kill_limit: float
    stop_grace: float
    proc: subprocess.Popen[bytes] | None = None

    def tail(self) -> str:
        """The end of its log, for failure messages."""
        return self.log_path.read_text()[-3000:]

    async def start(self, fault: str | None) -> None:
        """Start it with `fault` armed (or none); return once `/healthz` answers or it has already died."""
        env = {k: v for k, v in self.env.items() if k != "ONGEA_FAULT"}
        if fault:
            env["ONGEA_FAULT"] = fault
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220 - one start; asyncio's subprocess API adds nothing
                self.command, env=env, stdout=log, stderr=log
            )
        up = await wait_healthy(f"{self.base}/healthz", tries=self.start_tries, pause=0.05, proc=self.proc)
        if not up and self.proc.poll() is None:
            raise AssertionError("server did not start: " + self.tail())

    async def wait_killed(self, limit: float | None = None) -> int:
        """Its exit status, once it has died at its fault point (within `limit`, by default `kill_limit`)."""
        assert self.proc is not None
        deadline = asyncio.get_running_loop().time() + (self.kill_limit if limit is None else limit)
        while self.proc.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("fault point not reached: " + self.tail())
            await asyncio.sleep(0.02)
        return self.proc.returncode

    def stop(self) -> None:
        """SIGTERM, killed if it takes longer than `stop_grace` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def poll_until(
    what: str, check: Callable[[], object], *, wait: float = 15, pause: float = 0.05
) -> None:
    """Call `check` (sync, or returning an awaitable) every `pause` seconds until it is true: a bounded wait
    for something another process does, failing with `what` after `wait` seconds instead of hanging."""
    deadline = time.monotonic() + wait
    while True:
        ok = check()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            return
        assert time.monotonic() < deadline, f"timed out after {wait:g}s waiting for {what}"
        await asyncio.sleep(pause)
