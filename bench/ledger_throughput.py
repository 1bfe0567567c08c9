"""Ledger throughput against pgbench on the same server, in the same run.

A confirmed transaction = `Ledger.propose` then `Ledger.confirm` (two round trips, two database
transactions: hold, then debit amount + fee with their balance_history rows, outbox row). Measured at 1, 8
and 32 concurrent clients (each client its own wallet), then with 32 clients all paying from ONE wallet, and
compared with `pgbench -b tpcb-like` at the same client counts on a fresh pgbench database.

    .venv/bin/python bench/ledger_throughput.py [--seconds 5] [--clients 1 8 32]

Uses DATABASE_URL when set, else starts the embedded PostgreSQL (pgserver) in a temporary folder. Creates its
own databases and drops them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.db import create_database, create_pool, drop_database, start_embedded
from ledger.migrate import migrate
from ledger.models import LedgerError, ProposalRequest
from ledger.service import Ledger
from ledger.users import create_user

REQUEST = ProposalRequest(type="buy_goods_till", amount=Decimal("10.00"), till="123456")


def pgbench_binary() -> str:
    try:
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found (neither in pgserver's install nor on PATH)")
    return found


async def ledger_rate(
    pool_dsn: str, clients: int, seconds: float, *, one_wallet: bool, default_reset: bool = False
) -> tuple[float, float, int]:
    """Confirmed transactions per second with `clients` concurrent clients, as propose+confirm and as the
    confirmation alone; also the refusals seen."""
    # create_pool resets connections with ledger.db.light_reset; reset=None restores asyncpg's default.
    extra = {"reset": None} if default_reset else {}
    pool = await create_pool(pool_dsn, min_size=clients, max_size=clients, **extra)
    try:
        ledger = Ledger(pool)
        wallets = []
        for _ in range(1 if one_wallet else clients):
            phone = f"2547{uuid.uuid4().int % 10**8:08d}"
            wallets.append((await create_user(pool, phone, balance="490000", plan="pro")).user_id)
        done = 0
        refused = 0
        deadline = 0.0

        async def client(i: int) -> None:
            nonlocal done, refused
            user = wallets[0 if one_wallet else i]
            while time.monotonic() < deadline:
                try:
                    p = await ledger.propose(user, REQUEST)
                    await ledger.confirm(p.id, user, p.version, voice_verified=True)
                    done += 1
                except LedgerError:
                    refused += 1

        # Warm up (connections, prepared statements), then measure.
        deadline = time.monotonic() + 0.5
        await asyncio.gather(*(client(i) for i in range(clients)))
        done = 0
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(client(i) for i in range(clients)))
        full_rate = done / (time.monotonic() - started)

        # Confirmation alone: proposals read back beforehand (as while people are talking), then confirmed
        # by all clients at once; one ledger operation (one round trip, one commit) per confirmed payment.
        per_client = max(1, int(full_rate * seconds / clients))
        pending = [
            [await ledger.propose(wallets[0 if one_wallet else i], REQUEST) for _ in range(per_client)]
            for i in range(clients)
        ]

        async def confirmer(i: int) -> None:
            nonlocal refused
            user = wallets[0 if one_wallet else i]
            for p in pending[i]:
                try:
                    await ledger.confirm(p.id, user, p.version, voice_verified=True)
                except LedgerError:
                    refused += 1

        started = time.monotonic()
        await asyncio.gather(*(confirmer(i) for i in range(clients)))
        confirm_rate = clients * per_client / (time.monotonic() - started)
        return full_rate, confirm_rate, refused
    finally:
        await pool.close()


def pgbench_rate(
    binary: str, dsn: str, clients: int, seconds: float, workload: tuple[str, ...] = ("-b", "tpcb-like")
) -> tuple[float, int]:
    """pgbench's transactions per second and how many it processed, running `workload` (its built-in
    tpcb-like, or `-n -f SCRIPT ...`) with `clients` clients for `seconds`."""
    done = subprocess.run(
        [binary, *workload, "-c", str(clients), "-j", str(clients), "-T", str(int(seconds)), dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout) or re.search(
        r"tps = ([0-9.]+)", done.stdout
    )
    processed = re.search(r"actually processed: (\d+)", done.stdout)
    if not match or not processed:
        raise SystemExit(f"cannot read pgbench output:\n{done.stdout}\n{done.stderr}")
    return float(match.group(1)), int(processed.group(1))


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--asyncpg-reset",
        action="store_true",
        help="keep asyncpg's default pool reset (one more round trip per operation) instead of light_reset",
    )
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL") or start_embedded(Path(tempfile.mkdtemp(prefix="ongea-bench-")))
    tag = uuid.uuid4().hex[:8]
    ledger_db, bench_db = f"ongea_bench_{tag}", f"ongea_pgbench_{tag}"
    ledger_dsn = await create_database(server, ledger_db)
    pgbench_dsn = await create_database(server, bench_db)
    binary = pgbench_binary()
    try:
        await migrate(ledger_dsn)
        subprocess.run([binary, "-i", "-q", pgbench_dsn], capture_output=True, text=True, check=True)  # noqa: ASYNC221
        version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout  # noqa: ASYNC221
        version = version.strip()
        where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded pgserver"
        reset = "asyncpg default" if args.asyncpg_reset else "light_reset"
        print(f"server: {where}; {version}; pool reset: {reset}")
        print("propose+confirm: a whole payment (2 operations, 2 commits); confirm: the confirmation alone")
        header = ("clients", "propose+confirm/s", "confirm/s", "pgbench tps", "ratio p+c", "ratio confirm")
        print("  ".join(f"{h:>{max(7, len(h))}}" for h in header))
        for clients in args.clients:
            full, confirm, refused = await ledger_rate(
                ledger_dsn, clients, args.seconds, one_wallet=False, default_reset=args.asyncpg_reset
            )
            tps, _ = pgbench_rate(binary, pgbench_dsn, clients, args.seconds)
            note = f"  ({refused} refused)" if refused else ""
            print(
                f"{clients:>7}  {full:>17.0f}  {confirm:>9.0f}  {tps:>11.0f}  {full / tps:>9.2f}"
                f"  {confirm / tps:>13.2f}{note}"
            )
        hot_clients = max(args.clients)
        full, confirm, refused = await ledger_rate(
            ledger_dsn, hot_clients, args.seconds, one_wallet=True, default_reset=args.asyncpg_reset
        )
        note = f"  ({refused} refused)" if refused else ""
        print(f"{hot_clients:>7}  {full:>17.0f}  {confirm:>9.0f}  {'(one wallet)':>11}{note}")
    finally:
        await drop_database(server, ledger_db)
        await drop_database(server, bench_db)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
