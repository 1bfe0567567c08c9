"""The long-running commands start the same way (`runtime.run_long_running`): a setting that cannot be read
is said in one line naming it, and the command exits 1 before it touches a database or a port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["serve", "mpesa-worker", "sweep", "mpesa-sim"])
def test_a_bad_setting_stops_every_long_running_command_at_once(command: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", command],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "ONGEA_LOG_LEVEL": "LOUD",
            # Nothing listens here: reaching for the database would be a different error.
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/none",
            "ONGEA_DATA_DIR": str(tmp_path / "data"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"ongea-pesa {command}: bad setting ONGEA_LOG_LEVEL: one of CRITICAL, ERROR, WARNING, INFO, DEBUG "
        "(got 'LOUD')"
    )
    assert "database" not in done.stderr.lower()
    assert not (tmp_path / "data").exists()  # no secret generated, no embedded database started
