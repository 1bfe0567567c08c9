"""`ongea-pesa serve` started the way a person starts it, for the tests that need the real process: a free
port, its output drained (and kept) on a thread so it never blocks, stopped with SIGTERM.

Also the crash tests' server (`FaultProcess`), which is killed at a fault point and restarted on its port,
`wait_healthy`, the wait for a started process's `/healthz`, and `HeldRelay`, which holds callbacks for a
server until it is back up."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from aiohttp import web

from ledger.models import ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user
from tests.ledger.conftest import fresh_phone


class ServeProcess:
    """`ongea-pesa serve` as a person runs it; its output is drained (and kept) so it never blocks."""

    def __init__(self, args: list[str], env: dict[str, str], *, limit: float = 120) -> None:
        self.lines: list[str] = []
        self.started = 0  # how many lines it printed until it was listening (its start-up)
        self.since = 0  # after the start-up, `output()` goes on from here (a shared server: `SharedServes`)
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
                    self.started = self.since = len(self.lines)
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
        """Everything it printed so far, as a server started for the test would show it: a shared server's
        start-up, then what it printed since the test began; once it has exited, to its last line (the drain
        is waited for)."""
        if self.proc.poll() is not None:
            self._drain.join(timeout=10)
        return "".join(self.lines[: self.started] + self.lines[max(self.since, self.started) :])

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


Serve = TypeVar("Serve", bound=ServeProcess)
F = TypeVar("F", bound=Callable[..., Any])


class SharedServes:
    """The `serve` processes shared by the tests of a session (of an xdist worker), one per environment.

    A test that asks for one gets the running process of that environment, started at the first ask, with
    its `output()` starting at the test's start: starting `serve` costs seconds, and the tests isolate
    themselves by making their own users. Between tests, `keep_only` stops the shared processes the next
    test does not ask for (tests/conftest.py's `pytest_runtest_setup`), so a test that does not ask for one
    runs, as it always did, with no server of another test acting on the run's database (claiming its
    payouts, sweeping its rows); tests/conftest.py orders the tests so that those of one environment run one
    after another, and each worker starts each process about once."""

    def __init__(self) -> None:
        self._running: dict[str, ServeProcess] = {}

    def get(self, key: str, start: Callable[[], Serve]) -> Serve:
        """The running process of `key` (started with `start` if there is none), its output from now."""
        served = self._running.get(key)
        if served is not None and served.proc.poll() is not None:
            del self._running[key]
            raise AssertionError(f"the shared server {key!r} died during an earlier test:\n" + served.log())
        if served is None:
            served = self._running[key] = start()
        served.since = len(served.lines)
        return served  # type: ignore[return-value]  # the one `start` made for this key

    def keep_only(self, keys: set[str]) -> None:
        """Stop (SIGTERM) every shared process whose key is not in `keys`; each must exit cleanly."""
        failed = []
        for key in [k for k in self._running if k not in keys]:
            served = self._running.pop(key)
            if served.stop() != 0:
                failed.append(
                    f"the shared server {key!r} exited with {served.proc.returncode}:\n{served.log()}"
                )
        assert not failed, "\n".join(failed)

    def stop_all(self) -> None:
        """Stop every one still running, whatever its exit status (a run ending early)."""
        while self._running:
            self._running.popitem()[1].stop()


SHARED = SharedServes()
# A run stopped before its session's end (Ctrl-C) still stops them: no server outlives its run.
atexit.register(SHARED.stop_all)


def shared_serve(key: str) -> Callable[[F], F]:
    """Marks a fixture function as one that hands out the shared server `key` (`SHARED.get(key, ...)`), so
    tests/conftest.py knows, before a test's set-up, which shared servers it uses."""

    def mark(fixture: F) -> F:
        fixture.shared_serve = key  # type: ignore[attr-defined]
        return fixture

    return mark


def shared_serve_keys(info: object) -> set[str]:
    """The keys of the shared servers a test uses, from its fixture closure (`item._fixtureinfo`): for each
    fixture name, the definition that applies to the test (the last one, the closest override)."""
    defs = getattr(info, "name2fixturedefs", {})
    return {key for ds in defs.values() if ds and (key := getattr(ds[-1].func, "shared_serve", None))}


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
    what: str, check: Callable[[], object], *, wait: float = 60, pause: float = 0.05
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


class HeldRelay:
    """An HTTP relay in front of a server that holds every request until `release()`, then forwards each to
    `target` and hands back its answer: a callback that comes while the server is down arrives once it is up
    again, whatever the time its restart takes (a fixed delay at the sender races the restart)."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.held = 0
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    def release(self) -> None:
        self._released.set()

    async def _relay(self, request: web.Request) -> web.Response:
        self.held += 1
        body = await request.read()
        await self._released.wait()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        async with aiohttp.ClientSession() as http:
            url = self.target + request.path_qs
            async with http.request(request.method, url, data=body, headers=headers) as resp:
                return web.Response(
                    status=resp.status, body=await resp.read(), content_type=resp.content_type
                )

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()


async def hold_other_payouts(pool: asyncpg.Pool, keep: list[uuid.UUID]) -> None:
    """Payouts other tests left open on this worker's database (the ones `a_round_passes` makes, a server
    stopped before their result) wait a day: a crash test's fault point must hit its own payout, not one of
    theirs that the restarted round claims first (a CI-style run's crash test saw its payout sent after the
    restart because the fault had killed the server on another one)."""
    await pool.execute(
        """UPDATE payout_outbox SET next_attempt_at = now() + interval '1 day'
           WHERE status IN ('pending', 'sent') AND NOT (transaction_id = ANY($1::uuid[]))""",
        keep,
    )


async def a_round_passes(pool: asyncpg.Pool, *, wait: float = 60) -> None:
    """Return once the background loop of the one server serving `pool`'s database has run a whole round
    that began after this call: the wait a test makes before checking that nothing (a second credit, a
    resend) happened. A payout confirmed now is claimed in a later round; a second one, confirmed once the
    first was sent, only in the round after that one ended (a short claim ends a round's sending)."""
    ledger = Ledger(pool)
    user = (await create_user(pool, fresh_phone(), balance=Decimal("1000"), plan="pro")).user_id
    for amount in ("10", "11"):
        request = ProposalRequest.build(type="send_phone", amount=amount, phone="0712345678")
        proposal = await ledger.propose(user, request)
        await ledger.confirm(proposal.id, user, proposal.version, voice_verified=True)

        async def sent(tx: uuid.UUID = proposal.id) -> bool:
            status = await pool.fetchval("SELECT status FROM payout_outbox WHERE transaction_id = $1", tx)
            return status is not None and status != "pending"

        await poll_until("a round of the server's background loop (a payout sent)", sent, wait=wait)
