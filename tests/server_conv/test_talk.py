"""`ongea-pesa talk` as a person uses it, against a real `serve` process: a server `error` ends the turn (the
prompt comes back), a card that was tapped, cancelled or refused is gone (the keys say there is nothing to
confirm), and with no `--token` it makes a demo user on the Quick start's embedded defaults."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from pgserver.utils import PostmasterInfo

from tests.server_conv.conftest import MakeUser, Server, quick_start_server, server_env
from tests.serving import ServeProcess

# A turn answers in well under a second here; a talk still running after this long is stuck.
TALK_LIMIT = 60
PAID = ("processing", "completed")


def _talk(url: str, tmp_path: Path, typed: str, *token: str) -> subprocess.CompletedProcess[str]:
    """`talk` with `typed` on its stdin (EOF ends it), failing the test if it hangs instead of exiting."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "voice_server.cli", "talk", "--server", url, *token],
            input=typed,
            env=server_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=TALK_LIMIT,
        )
    except subprocess.TimeoutExpired as exc:
        so_far = exc.stdout.decode() if isinstance(exc.stdout, bytes) else str(exc.stdout)
        raise AssertionError(
            f"talk hung (still waiting after {TALK_LIMIT} s); it printed:\n{so_far}"
        ) from None


async def _transactions(pool: asyncpg.Pool, user_id: object) -> list[tuple[Decimal, str]]:
    rows = await pool.fetch(
        "SELECT amount, status FROM transactions WHERE user_id = $1 ORDER BY created_at", user_id
    )
    return [(r["amount"], r["status"]) for r in rows]


async def test_the_audits_second_cancel_key_does_not_leave_talk_stuck(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The audit's input: `x` cancels the card, a second `x` used to send a dead tool result, get
    "no such tool call" and wait forever. Now it is told there is nothing to confirm, and the next payment
    goes through."""
    user = await make_user(balance="1500.00")
    typed = "send 200 to mama\nx\nx\nsend 300 to mama\nc\n"
    done = await asyncio.to_thread(_talk, server.url, tmp_path, typed, "--token", user.token)
    assert done.returncode == 0, done.stderr
    assert "nothing to confirm" in done.stdout, done.stdout
    assert "no such tool call" not in done.stdout
    assert "[receipt]" in done.stdout
    txs = await _transactions(pool, user.user_id)
    assert txs[0] == (Decimal("200.00"), "cancelled") and len(txs) == 2, txs
    assert txs[1][0] == Decimal("300.00") and txs[1][1] in PAID, txs


async def test_a_server_error_ends_the_turn_and_the_session_goes_on(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A line the server refuses (over 2000 characters) is answered with an `error` event and nothing else:
    talk shows it and gives the prompt back, and a payment typed next still works."""
    user = await make_user(balance="1500.00")
    typed = "a" * 2001 + "\nsend 300 to mama\nc\n"
    done = await asyncio.to_thread(_talk, server.url, tmp_path, typed, "--token", user.token)
    assert done.returncode == 0, done.stderr
    assert "[error]" in done.stdout and "longer than 2000 characters" in done.stdout, done.stdout
    assert "[receipt]" in done.stdout
    txs = await _transactions(pool, user.user_id)
    assert len(txs) == 1 and txs[0][0] == Decimal("300.00") and txs[0][1] in PAID, txs


@pytest.mark.parametrize("cancel", ["x", "no"], ids=["cancel-key", "said-no"])
async def test_after_a_cancel_the_confirm_key_pays_nothing(
    cancel: str, server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Whether the card was cancelled with its key or by saying no, `c` afterwards has no card to answer."""
    user = await make_user(balance="1500.00")
    typed = f"send 200 to mama\n{cancel}\nc\n"
    done = await asyncio.to_thread(_talk, server.url, tmp_path, typed, "--token", user.token)
    assert done.returncode == 0, done.stderr
    assert "nothing to confirm" in done.stdout, done.stdout
    assert "[receipt]" not in done.stdout
    assert await _transactions(pool, user.user_id) == [(Decimal("200.00"), "cancelled")]
    balance = await pool.fetchval("SELECT wallet_balance FROM profiles WHERE id = $1", user.user_id)
    assert balance == Decimal("1500.00")
    debits = await pool.fetchval(
        "SELECT count(*) FROM balance_history WHERE user_id = $1 AND change_amount < 0", user.user_id
    )
    assert debits == 0


async def test_talk_without_a_token_refuses_clearly_off_the_embedded_defaults(
    server: Server, tmp_path: Path
) -> None:
    """This server runs on a DATABASE_URL, so it offers no demo user: talk says what to do instead."""
    done = await asyncio.to_thread(_talk, server.url, tmp_path, "what is my balance\n")
    assert done.returncode == 1
    assert "offers no demo user" in done.stderr and "--token" in done.stderr


@pytest.fixture
def quick_start_serve() -> Iterator[tuple[ServeProcess, Path]]:
    with quick_start_server() as served:
        yield served


async def test_talk_without_a_token_pays_as_the_demo_user(
    quick_start_serve: tuple[ServeProcess, Path], tmp_path: Path
) -> None:
    """Right after the Quick start's `serve`: `talk` alone makes a demo user and pays by typing."""
    served, data = quick_start_serve
    done = await asyncio.to_thread(_talk, served.base, tmp_path, "send 500 to mama\nc\n")
    assert done.returncode == 0, done.stderr
    demo = re.search(r"Demo user (\d+): balance 10000.00, PIN (\d+), contacts .*Mama", done.stdout)
    assert demo, done.stdout
    assert "[receipt]" in done.stdout and "balance 9495.00" in done.stdout, done.stdout  # basic plan: 1% fee
    # The ledger itself, in the embedded database serve started.
    info = PostmasterInfo.read_from_pgdata(data / "data" / "pg")
    assert info is not None
    conn = await asyncpg.connect(info.get_uri())
    try:
        row = await conn.fetchrow(
            """SELECT t.amount, t.status, p.wallet_balance FROM transactions t
               JOIN profiles p ON p.id = t.user_id WHERE p.phone_number = $1""",
            demo.group(1),
        )
    finally:
        await conn.close()
    assert row is not None and row["amount"] == Decimal("500.00") and row["status"] in PAID
    assert row["wallet_balance"] == Decimal("9495.00")
