"""The throttling storm at full length: a third of all Daraja requests refused (500.003.02/.03) for a whole
minute while two `serve` processes pay out 200 payouts and take 50 top-ups (the test,
tests/daraja/test_throttle_storm.py, runs it shorter). Needs DATABASE_URL, as the tests do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    env = dict(os.environ, ONGEA_STORM_SECONDS=os.environ.get("ONGEA_STORM_SECONDS", "60"))
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/daraja/test_throttle_storm.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
    )
    took = time.monotonic() - started
    print(f"storm of {env['ONGEA_STORM_SECONDS']} s: exit {done.returncode} in {took:.0f} s")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
