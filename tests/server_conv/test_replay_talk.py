"""`ongea-pesa replay --server URL` drives a running server over its WebSocket (wait: and gateway-failure
transcripts are skipped), and `ongea-pesa talk` holds a conversation a person would type."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg

from tests.server_conv.conftest import MakeUser, Server, server_env

REPO = Path(__file__).resolve().parents[2]


SAMPLE = (
    "en-pin-before-yes",
    "en-tap-confirm",
    "en-tap-cancel",
    "sw-tuma-mama",
    "en-double-yes",
    "en-proposal-expires",
    "en-gateway-failed",
)


def _replay(
    server: Server, database_url: str, tmp_path: Path, *paths: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "voice_server.cli",
            "replay",
            "--server",
            server.url,
            "--database-url",
            database_url,
            *paths,
        ],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_replay_over_the_websocket(server: Server, database_url: str, tmp_path: Path) -> None:
    """The shared corpus and a sample of the suite's transcripts (all of them replay locally in
    tests/transcripts): taps, a PIN before the yes, Swahili, a double yes, and two that must be skipped."""
    corpus = REPO.parent / "shared" / "corpus" / "transcripts"
    shared = [str(corpus)] if corpus.is_dir() else []  # when the checkout sits beside the shared samples
    sample = [str(REPO / "tests" / "transcripts" / f"{name}.yaml") for name in SAMPLE]
    done = await asyncio.to_thread(_replay, server, database_url, tmp_path, "--json", *shared, *sample)
    result = json.loads(done.stdout)
    failures = [t for t in result["transcripts"] if not t["ok"]]
    assert not failures, json.dumps(failures, indent=1)
    assert done.returncode == 0 and result["passed"] == (4 if shared else 0) + len(SAMPLE)
    lines = await asyncio.to_thread(_replay, server, database_url, tmp_path, *sample[-2:])
    assert lines.stdout.count("SKIP") == 2, lines.stdout
    assert "wait:" in lines.stdout and "gateway: failed" in lines.stdout


async def test_talk_types_a_payment_and_confirms_with_a_key(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    user = await make_user(balance="1500.00")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "voice_server.cli", "talk", "--server", server.url, "--token", user.token],
        input="send 200 to mama\nc\nwhat is my balance\n",
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "assistant:" in out and "proposal" in out and "[c] confirm" in out
    assert "[receipt]" in out
    row = await pool.fetchrow(
        "SELECT amount, status, voice_verified FROM transactions WHERE user_id = $1", user.user_id
    )
    assert row["amount"] == Decimal("200.00") and row["status"] in ("processing", "completed")
    assert row["voice_verified"] is False


async def test_talk_hides_the_pin(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    user = await make_user(balance="5000.00", pin="4321")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "voice_server.cli", "talk", "--server", server.url, "--token", user.token],
        input="send 1500 to mama\nyes\n4321\n",
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "PIN (hidden)" in done.stdout + done.stderr
    assert re.search(r"(?<!\w)4321(?!\w)", done.stdout) is None  # (not as a piece of an id or a number)
    status = await pool.fetchval("SELECT status FROM transactions WHERE user_id = $1", user.user_id)
    assert status in ("processing", "completed")
    assert uuid.UUID(str(user.user_id))
