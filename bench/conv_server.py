"""Shared by the conversation-server benches: a fresh migrated database, a real `ongea-pesa serve` process on
it (on a free port), users with big wallets, and the server's resident memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.db import create_database, drop_database, start_embedded
from ledger.migrate import migrate
from ledger.users import create_user
from voice_server.auth import mint_user_token

JWT_SECRET = "bench-user-jwt-secret-0123456789abcdef0123456789"


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def fresh_database() -> tuple[str, str, str]:
    """(server dsn, database name, database dsn) of a new migrated database."""
    server = os.environ.get("DATABASE_URL") or start_embedded(Path(tempfile.mkdtemp(prefix="ongea-bench-")))
    name = f"ongea_bench_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server, name)
    await migrate(dsn)
    return server, name, dsn


async def drop(server: str, name: str) -> None:
    await drop_database(server, name)


METRICS_TOKEN = "bench-metrics-token"  # /metrics is refused without ONGEA_METRICS_TOKEN


def serve(dsn: str, **env: str) -> Served:
    data = Path(tempfile.mkdtemp(prefix="ongea-bench-srv-"))
    log = data / "server.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voice_server.cli", "serve", "--port", "0", "--database-url", dsn],
        env={
            **clean,
            "ONGEA_DATA_DIR": str(data),
            "ONGEA_JWT_SECRET": JWT_SECRET,
            "ONGEA_LOG_LEVEL": "INFO",
            "ONGEA_METRICS_TOKEN": METRICS_TOKEN,
            "ONGEA_DB_POOL_MAX": "10",  # the PostgreSQL is shared; override with env
            **env,
        },
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://\S+)", log.read_text())
        if match:
            return Served(match.group(1), proc, log)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start:\n" + log.read_text())


async def make_users(dsn: str, count: int, balance: str = "490000") -> list[tuple[uuid.UUID, str]]:
    """(user id, user token) of `count` users on the pro plan with one contact each."""
    conn = await asyncpg.connect(dsn)
    users = []
    try:
        for _ in range(count):
            phone = f"2547{uuid.uuid4().int % 10**8:08d}"
            user = await create_user(conn, phone, balance=Decimal(balance), plan="pro")
            await conn.execute(
                "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, $2, $3, $4)",
                user.user_id,
                "Mary Wambui",
                "254733444555",
                "Mama",
            )
            users.append((user.user_id, mint_user_token(JWT_SECRET, user.user_id, ttl_seconds=86400)))
    finally:
        await conn.close()
    return users


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
