"""A short token secret makes every user token forgeable offline (HS256 over a guessable key; Supabase's own
JWT secrets are at least 32 characters). The server refuses to start on one, with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ONGEA_JWT_SECRET", "hunter2"),
        ("SUPABASE_JWT_SECRET", ""),
        ("ONGEA_SESSION_SECRET", "x" * 31),
        ("ONGEA_MPESA_CALLBACK_SECRET", "abc"),
    ],
)
def test_serve_refuses_a_short_secret(attack_url: str, tmp_path: Path, name: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONGEA_", "SUPABASE_", "DARAJA_"))}
    env.update({"ONGEA_DATA_DIR": str(tmp_path), name: value})
    r = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "serve", "--port", "0", "--database-url", attack_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0 and lines, r.stderr
    assert "Traceback" not in r.stderr and "at least" in lines[-1], r.stderr
    assert "got" not in lines[-1]  # the value itself is not echoed
