"""M-Pesa test harness: the Daraja simulator and our server (callback routes, top-ups, background service)
both served over real HTTP on 127.0.0.1, on the run's real PostgreSQL database."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from daraja_sim import Simulator
from ledger.daraja.client import DarajaClient, DarajaConfig
from ledger.invariants import check_invariants
from ledger.models import ProposalRequest
from ledger.pace import Pace
from ledger.service import Ledger
from ledger.users import create_user
from tests.gate_rules import confirm_as_a_person
from voice_server.app import AppRunner, create_app
from voice_server.auth import mint_user_token
from voice_server.mpesa_routes import MPESA_KEY, MpesaService, add_mpesa_routes
from voice_server.settings import Settings

_phones = itertools.count(random.Random().randrange(0, 1_000_000) * 10)
CALLBACK_SECRET = "test-callback-secret-" + uuid.uuid4().hex[:8]
JWT_SECRET = "test-jwt-secret-" + uuid.uuid4().hex
PIN = "2580"  # every user's: the keypad answer when the ledger asks for it (who may spend)


def fresh_phone() -> str:
    """A valid Kenyan (011x) mobile number not used yet in this run."""
    return f"25411{next(_phones) % 10_000_000:07d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def sim_config(sim: Simulator, **overrides: Any) -> DarajaConfig:
    values: dict[str, Any] = {
        "base_url": sim.base_url,
        "consumer_key": sim.consumer_key or "key",
        "consumer_secret": sim.consumer_secret or "secret",
        "shortcode": sim.shortcode,
        "passkey": sim.passkey,
        "b2c_shortcode": "600000",
        "initiator_name": "testapi",
        "initiator_password": sim.initiator_password,
        "certificate": sim.certificate,
    }
    values.update(overrides)
    return DarajaConfig(**values)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(consumer_key="sim-key", consumer_secret="sim-secret", callback_delay=0.02)
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[DarajaClient]:
    async with DarajaClient(sim_config(sim)) as c:
        yield c


@dataclass
class Harness:
    pool: asyncpg.Pool
    sim: Simulator
    service: MpesaService
    ledger: Ledger
    base_url: str
    http: aiohttp.ClientSession
    settings: Settings
    users: list[uuid.UUID]

    @property
    def callback_base(self) -> str:
        return f"{self.base_url}/v1/callbacks/{CALLBACK_SECRET}"

    async def user(self, balance: str = "10000.00", plan: str = "pro", **profile: object) -> uuid.UUID:
        new = await create_user(self.pool, fresh_phone(), balance=Decimal(balance), plan=plan, pin=PIN)
        if profile:
            sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(profile))
            await self.pool.execute(
                f"UPDATE profiles SET {sets} WHERE id = $1", new.user_id, *profile.values()
            )
        self.users.append(new.user_id)
        return new.user_id

    def token(self, user_id: uuid.UUID) -> str:
        return mint_user_token(JWT_SECRET, user_id, ttl_seconds=600)

    async def confirmed(self, user_id: uuid.UUID, type_: str, amount: str, **fields: str) -> uuid.UUID:
        """Propose and confirm: the transaction is processing and its outbox row is pending."""
        proposal = await self.ledger.propose(
            user_id,
            ProposalRequest(type=type_, amount=Decimal(amount), **fields),  # type: ignore[arg-type]
        )
        await confirm_as_a_person(self.ledger, proposal.id, user_id, proposal.version, pin=PIN)
        return proposal.id

    async def wait_for(self, predicate: Callable[[], Awaitable[bool]], limit: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + limit
        while not await predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.02)

    async def tx(self, tx_id: uuid.UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow("SELECT * FROM transactions WHERE id = $1", tx_id)
        assert row is not None
        return row

    async def settled(self, tx_id: uuid.UUID, limit: float = 10.0) -> asyncpg.Record:
        async def done() -> bool:
            return (await self.tx(tx_id))["status"] in ("completed", "failed")

        await self.wait_for(done, limit)
        return await self.tx(tx_id)

    async def wallet(self, user_id: uuid.UUID) -> Decimal:
        value: Decimal = await self.pool.fetchval(
            "SELECT wallet_balance FROM profiles WHERE id = $1", user_id
        )
        return value

    async def callbacks(self, tx_id: uuid.UUID) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT * FROM mpesa_callbacks WHERE transaction_id = $1 ORDER BY id", tx_id
        )
        return rows

    async def topup(self, user_id: uuid.UUID, amount: Any) -> tuple[int, dict[str, Any]]:
        """`POST /v1/topups` as the user's app sends it: (status, JSON body)."""
        async with self.http.post(
            f"{self.base_url}/v1/topups",
            json={"amount": amount},
            headers={"Authorization": f"Bearer {self.token(user_id)}"},
        ) as resp:
            return resp.status, await resp.json()

    async def expect_deposit(self, user_id: uuid.UUID, amount: str) -> tuple[uuid.UUID, str]:
        """Confirm a bank_to_mpesa: (transaction id, the account reference to pay the paybill with)."""
        proposal = await self.ledger.propose(
            user_id, ProposalRequest.build(type="bank_to_mpesa", amount=amount, bank_code="68")
        )
        result = await self.ledger.confirm(proposal.id, user_id, proposal.version, voice_verified=True)
        assert result.account_reference is not None
        return proposal.id, result.account_reference

    async def post_callback(self, kind: str, body: Any) -> tuple[int, Any]:
        async with self.http.post(f"{self.callback_base}/{kind}", json=body) as resp:
            return resp.status, await resp.json()

    async def invariants(self) -> list[str]:
        return await check_invariants(self.pool, self.users)


@pytest.fixture
async def harness(pool: asyncpg.Pool, sim: Simulator, tmp_path: Path) -> AsyncIterator[Harness]:
    # Bound now and handed to the site, so no other process can take the port in between.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "public_url": f"http://127.0.0.1:{port}",
        "data_dir": tmp_path,
        "mpesa_callback_secret": CALLBACK_SECRET,
        "payout_reconcile_after_seconds": 1,
        "ONGEA_JWT_SECRET": JWT_SECRET,
    }
    settings = Settings(**values)
    app = create_app(settings, pool)
    add_mpesa_routes(app)
    service = MpesaService(pool, settings, poll_interval=0.05, lease_seconds=5, simulator=sim)
    app[MPESA_KEY] = service
    runner = AppRunner(app, settings)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    await service.start()
    async with aiohttp.ClientSession() as http:
        h = Harness(pool, sim, service, service.ledger, f"http://127.0.0.1:{port}", http, settings, [])
        yield h
        await service.stop()
        await sim.idle()
        violations = await h.invariants()
    await runner.cleanup()
    assert violations == [], violations


@pytest.fixture
async def idle(harness: Harness) -> AsyncIterator[Harness]:
    """The harness with its background loop stopped (workers and client started again without it), so a
    test runs the worker's rounds itself."""
    await harness.service.stop()
    await harness.service.start_without_loop()
    yield harness


@dataclass
class HeldPace:
    """A pace whose next slot waits for the test: `waiting` is set once a sender waits for it (after its
    claim), `slot` lets it go; `waits` are the delays the senders were told."""

    pace: Pace
    waiting: asyncio.Event
    slot: asyncio.Event
    waits: list[float]


def held_pace(per_second: float = 1) -> HeldPace:
    waiting, slot = asyncio.Event(), asyncio.Event()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        waiting.set()
        await slot.wait()

    pace = Pace(per_second, clock=lambda: 0, sleep=sleep)
    pace.reserve()  # the slot of a payout sent just before: the next one is the held one
    return HeldPace(pace, waiting, slot, waits)


async def lease_runs_out(h: Harness, tx: uuid.UUID) -> None:
    """The payout's lease as it is once its time has passed (due again for any worker)."""
    await h.pool.execute(
        "UPDATE payout_outbox SET next_attempt_at = now() - interval '1 second' WHERE transaction_id = $1", tx
    )
