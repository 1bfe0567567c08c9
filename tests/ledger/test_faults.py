"""The crash tests' fault injection is inert unless a test sets it: a process dies at a fault point only when
`ONGEA_FAULT` names that point, and never when its environment says production."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PASS_THE_POINT = "from ledger.faults import fault_point; fault_point('topup_before_push'); print('went on')"


def run_past_the_point(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PASS_THE_POINT],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_point_a_test_names_kills_the_process() -> None:
    done = run_past_the_point({"ONGEA_FAULT": "topup_before_push"})
    assert done.returncode == -signal.SIGKILL
    assert done.stdout == ""


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"ONGEA_FAULT": "topup_after_push"},
        {"ONGEA_FAULT": "topup_before_push", "DARAJA_ENVIRONMENT": "production"},
        {"ONGEA_FAULT": "topup_before_push", "ONGEA_DARAJA_ENVIRONMENT": "production"},
    ],
    ids=["unset", "another point", "production", "production (ONGEA_ name)"],
)
def test_otherwise_the_process_goes_on(env: dict[str, str]) -> None:
    done = run_past_the_point(env)
    assert (done.returncode, done.stdout) == (0, "went on\n")
