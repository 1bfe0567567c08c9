"""Transcript replay on the local stack: a fresh user per transcript, the same session driver, dialogue and
ledger as live sessions, and the M-Pesa simulator with the same payout worker and callback handlers the
server runs (over real HTTP), so `final` is checked after the gateway settled.

The dialogue's clock is a `ReplayClock` moved by `wait:` turns (nothing sleeps). `Replayer` is the seam for
other ways of driving a conversation (the WebSocket replayer of `--server` implements the same `run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import asyncpg
from aiohttp import web
from pydantic import SecretStr, ValidationError

from daraja_sim import Behaviour, Simulator
from ledger.daraja import client as daraja_api
from ledger.models import LedgerError
from ledger.rules import write_rules
from ledger.users import create_user
from voice_server.appkeys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from voice_server.conversation.driver import SessionClosed, SessionDriver, TurnResult
from voice_server.conversation.transcripts import (
    Observed,
    Transcript,
    TranscriptError,
    check_final,
    check_turn,
    load_transcript,
    transcript_files,
)
from voice_server.dialogue.events import PinEntry, Tap, Tick, UserEvent, Utterance
from voice_server.metrics import Metrics
from voice_server.mpesa_routes import MPESA_KEY, MpesaService, add_mpesa_routes
from voice_server.settings import Settings
from voice_server.tools.models import TOOLS

PAYOUT_PATHS = (daraja_api.B2C_PATH, daraja_api.B2POCHI_PATH, daraja_api.B2B_PATH)
SETTLE_ROUNDS = 60


class ReplayClock:
    """The dialogue's and the ledger's 'now' during a replay: real time plus the waits replayed so far."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class Report:
    path: str
    name: str
    ok: bool
    error: str | None = None
    turn: int | None = None  # 1-based index of the failing turn
    seconds: float = 0.0
    malformed: bool = False
    details: dict[str, object] = field(default_factory=dict)

    def line(self) -> str:
        if self.malformed:
            return f"ERROR {self.path}: {self.error}"
        if self.ok:
            return f"PASS  {self.name} ({self.path})"
        return f"FAIL  {self.name} ({self.path}): {self.error}"

    def as_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "name": self.name,
            "ok": self.ok,
            "error": self.error,
            "turn": self.turn,
            "malformed": self.malformed,
            "seconds": round(self.seconds, 3),
        }


class Replayer(Protocol):
    async def run(self, transcript: Transcript, path: str) -> Report: ...


# --- users and the ledger's state --------------------------------------------------------------------------


async def prepare_user(pool: asyncpg.Pool, transcript: Transcript) -> uuid.UUID:
    """A fresh user as the transcript describes it: balance, plan, PIN, contacts."""
    spec = transcript.user
    for _ in range(5):
        phone = "2547" + "".join(secrets.choice("0123456789") for _ in range(8))
        try:
            user = await create_user(pool, phone, balance=Decimal(spec.balance), plan=spec.plan, pin=spec.pin)
            break
        except Exception as exc:  # phone_taken: draw another number
            if getattr(exc, "code", "") != "phone_taken":
                raise
    else:  # pragma: no cover - ten million numbers
        raise RuntimeError("no free phone number for a replay user")
    for c in spec.contacts:
        await pool.execute(
            "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, $2, $3, $4)",
            user.user_id,
            c.name,
            c.phone_number,
            c.nickname,
        )
    return user.user_id


async def committed_count(pool: asyncpg.Pool, user_id: uuid.UUID) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE user_id = $1 AND confirmed_at IS NOT NULL", user_id
    )
    return count


async def final_state(pool: asyncpg.Pool, user_id: uuid.UUID) -> tuple[Decimal, list[dict[str, object]]]:
    balance: Decimal = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user_id)
    rows = await pool.fetch(
        """SELECT type, amount, fee, status, phone, till, paybill, account, agent, store, bank_code,
                  voice_verified, version, error_message, mpesa_transaction_id
           FROM transactions WHERE user_id = $1 ORDER BY created_at, id""",
        user_id,
    )
    return balance, [dict(r) for r in rows]


def tool_event(name: str, parameters: dict[str, Any], live: dict[str, object] | None) -> UserEvent:
    """The event an agent tool's call makes, validated by the tool's own model (as `POST /v1/tools/NAME`
    does); a confirm or a cancel without a proposal id acts on the proposal open now (a replayed
    conversation's proposals have new ids)."""
    spec = TOOLS.get(name)
    if spec is None:
        raise TranscriptError("(turn)", "tool.name", f"no tool named {name!r}")
    body = dict(parameters)
    if name in ("confirm_transaction", "cancel_transaction") and "proposal_id" not in body:
        body["proposal_id"] = str(live["proposal_id"]) if live else str(uuid.uuid4())
        if name == "confirm_transaction" and "version" not in body:
            body["version"] = int(str(live["version"])) if live else 1
    try:
        return spec.event(spec.model.model_validate(body))
    except ValidationError as exc:
        raise TranscriptError("(turn)", "tool.parameters", str(exc.errors()[0]["msg"])) from None


def observed(result: TurnResult, newly_committed: int) -> Observed:
    return Observed(
        say=[s.text for s in result.say],
        outcome=result.outcome,
        language=result.language,
        proposed=result.proposal if result.outcome == "proposed" else None,
        asked=result.asked,
        committed=result.committed,
        cancelled=result.cancelled,
        rejected=result.rejected,
        balance=result.balance,
        newly_committed=newly_committed,
    )


# --- the local stack ----------------------------------------------------------------------------------------


class LocalStack:
    """The pieces a live server runs for money, in this process: pool, M-Pesa simulator, payout worker and
    the Daraja callback routes on a real HTTP port."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.base_settings = settings
        self.simulator = Simulator(callback_delay=0.0)
        self.service: MpesaService | None = None
        self._runner: web.AppRunner | None = None
        self.settings = settings

    async def start(self) -> None:
        sock = socket.create_server(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.settings = self.base_settings.model_copy(
            update={
                "host": "127.0.0.1",
                "port": port,
                "public_url": None,
                "mpesa_callback_secret": SecretStr(secrets.token_hex(16)),
                "daraja_consumer_key": None,
                "daraja_consumer_secret": None,
            }
        )
        # The ledger decides who may spend with the settings' numbers, as a server writes them at start-up.
        await write_rules(self.pool, self.settings.gate_rules())
        # Only the routes Daraja calls back on, as a server mounts them: the turns go to the driver directly,
        # so the rest of the server (its API, pages, WebSocket) is neither built nor imported.
        app = web.Application()
        app[SETTINGS_KEY], app[POOL_KEY], app[METRICS_KEY] = self.settings, self.pool, Metrics()
        add_mpesa_routes(app)
        # Replay drives the worker's rounds itself, in step with the turns: the background loop only idles.
        self.service = MpesaService(self.pool, self.settings, simulator=self.simulator, poll_interval=3600.0)
        await self.service.start()
        app[MPESA_KEY] = self.service
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.service is not None:
            await self.service.stop()
        await self.simulator.stop()

    def set_gateway(self, result: str) -> None:
        """How M-Pesa answers the payouts of the next transcript."""
        self.simulator.rules.clear()
        self.simulator.default = Behaviour()
        if result == "failed":
            for path in PAYOUT_PATHS:
                self.simulator.add_rule(Behaviour(outcome="fail"), path=path)
        elif result == "timeout":
            for path in PAYOUT_PATHS:
                self.simulator.add_rule(Behaviour(callback="none"), path=path)

    async def settle(self, user_id: uuid.UUID) -> None:
        """Run the payout worker until the user's payouts are settled: send, wait for the callbacks, and for
        payouts whose callback never comes, reconcile by a status query (as the worker does when due)."""
        service = self.service
        assert service is not None and service.payouts is not None
        for _ in range(SETTLE_ROUNDS):
            await service.payouts.send_due()
            await self.simulator.idle()
            waiting = await self.pool.fetch(
                """SELECT t.id, o.status FROM transactions t
                   JOIN payout_outbox o ON o.transaction_id = t.id
                   WHERE t.user_id = $1 AND t.status = 'processing'""",
                user_id,
            )
            if not waiting:
                return
            for row in waiting:
                if row["status"] in ("sent", "dead"):
                    await service.payouts.query_status(row["id"])
            await self.simulator.idle()
            await asyncio.sleep(0.005)


class LocalReplayer:
    """Replays transcripts through `SessionDriver` on the local stack. Transcripts that want the same answer
    from M-Pesa (`gateway:`) run `parallel` at a time: the simulator's behaviour is set once per group."""

    def __init__(self, stack: LocalStack, parallel: int = 4) -> None:
        self.stack = stack
        self.parallel = parallel
        self._gateway: str | None = None

    @staticmethod
    def group_of(transcript: Transcript) -> str:
        return transcript.gateway.result

    async def run(self, transcript: Transcript, path: str) -> Report:
        """One transcript; a failure to set it up (an opening balance the ledger refuses, say) is reported
        as that transcript's failure, and the others still run."""
        try:
            return await self._run(transcript, path)
        except LedgerError as exc:
            error = f"user: the ledger refused it: {exc.message}"
            return Report(path, transcript.name, ok=False, error=error)
        except TranscriptError as exc:
            return Report(path, transcript.name, ok=False, error=f"{exc.field}: {exc.message}")

    async def _run(self, transcript: Transcript, path: str) -> Report:
        started = time.perf_counter()
        pool = self.stack.pool
        clock = ReplayClock()
        driver = SessionDriver(pool, self.stack.settings, clock=clock)
        if self._gateway != transcript.gateway.result:
            self._gateway = transcript.gateway.result
            self.stack.set_gateway(self._gateway)
        user_id = await prepare_user(pool, transcript)
        session = await driver.start_session(user_id, language=transcript.user.language)
        live: dict[str, object] | None = None
        report = Report(path, transcript.name, ok=True)
        for number, turn in enumerate(transcript.turns, start=1):
            before = await committed_count(pool, user_id)
            event: UserEvent
            if turn.user is not None:
                event = Utterance(turn.user, asr_confidence=turn.asr_confidence)
            elif turn.tap is not None:
                pid = uuid.UUID(str(live["proposal_id"])) if live else uuid.uuid4()
                version = int(str(live["version"])) if live else None
                event = Tap(turn.tap, pid, version)
            elif turn.pin is not None:
                event = PinEntry(turn.pin)
            elif turn.tool is not None:
                event = tool_event(turn.tool.name, turn.tool.parameters, live)
            else:
                clock.advance(turn.wait or 0)
                await self.stack.settle(user_id)  # M-Pesa answers while time passes (receipts arrive)
                event = Tick()
            try:
                result = await driver.handle(session.session_id, user_id, event)
            except SessionClosed as exc:
                result = TurnResult(
                    say=[], client_events=[], outcome="ended", proposal=None, rejected=exc.code
                )
            live = result.proposal
            seen = observed(result, await committed_count(pool, user_id) - before)
            problem = check_turn(turn.expect, seen)
            if problem is not None:
                report.ok, report.turn = False, number
                report.error = f"turn {number} ({turn.describe()}): {problem}"
                break
        if report.ok:
            await self.stack.settle(user_id)
            balance, transactions = await final_state(pool, user_id)
            problem = check_final(transcript.final, balance, transactions)
            if problem is not None:
                report.ok, report.error = False, f"final: {problem}"
        report.seconds = time.perf_counter() - started
        return report


async def replay_files(paths: list[str], replayer: Replayer) -> list[Report]:
    """Load and replay every transcript; a malformed one is reported and the others still run. Reports come
    back in file order. A replayer with `parallel` > 1 and a `group_of(transcript)` runs the transcripts of
    one group at the same time (each has its own user, session and clock), one group after the other."""
    reports: list[Report | None] = []
    loaded: list[tuple[int, Transcript, str]] = []
    for path in transcript_files(paths):
        try:
            transcript = load_transcript(path)
        except TranscriptError as exc:
            reports.append(
                Report(str(path), path.name, ok=False, error=f"{exc.field}: {exc.message}", malformed=True)
            )
            continue
        reports.append(None)
        loaded.append((len(reports) - 1, transcript, str(path)))
    parallel = max(1, int(getattr(replayer, "parallel", 1)))
    group_of = getattr(replayer, "group_of", None)
    groups: dict[object, list[tuple[int, Transcript, str]]] = {}
    for item in loaded:
        groups.setdefault(group_of(item[1]) if group_of is not None else None, []).append(item)
    gate = asyncio.Semaphore(parallel)

    async def one(index: int, transcript: Transcript, path: str) -> None:
        async with gate:
            reports[index] = await replayer.run(transcript, path)

    for items in groups.values():
        await asyncio.gather(*(one(*item) for item in items))
    return [r for r in reports if r is not None]


@contextlib.asynccontextmanager
async def local_replayer(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[LocalReplayer]:
    stack = LocalStack(pool, settings)
    await stack.start()
    try:
        yield LocalReplayer(stack)
    finally:
        await stack.stop()


def summary(reports: list[Report], seconds: float) -> str:
    passed = sum(r.ok for r in reports)
    failed = sum(not r.ok and not r.malformed for r in reports)
    malformed = sum(r.malformed for r in reports)
    text = f"{passed} passed, {failed} failed"
    if malformed:
        text += f", {malformed} malformed"
    return f"{text} ({len(reports)} transcripts in {seconds:.1f}s)"


__all__ = [
    "LocalReplayer",
    "LocalStack",
    "ReplayClock",
    "Replayer",
    "Report",
    "final_state",
    "local_replayer",
    "observed",
    "prepare_user",
    "replay_files",
    "summary",
]
