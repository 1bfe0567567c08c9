"""`ongea-pesa migrate` as an operator runs it: applies, then is a no-op, then refuses an edited file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from ledger.migrate import migrations_dir


def migrate_cli(url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "migrate", "--database-url", url],
        env=env,
        capture_output=True,
        text=True,
    )


async def test_migrate_twice_then_refuse_an_edit(
    empty_database: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    url = await empty_database()
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    env = {**os.environ, "ONGEA_MIGRATIONS_DIR": str(folder), "ONGEA_DATA_DIR": str(tmp_path / "data")}

    first = migrate_cli(url, env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_auth.sql" in first.stdout and "applied 0002_founding_schema.sql" in first.stdout

    second = migrate_cli(url, env)
    assert (second.returncode, second.stdout.strip()) == (0, "database is up to date")

    founding = folder / "0002_founding_schema.sql"
    founding.write_text(founding.read_text().replace("DEFAULT 500.00", "DEFAULT 5000.00"))
    third = migrate_cli(url, env)
    assert third.returncode == 1
    assert "0002_founding_schema.sql was edited" in third.stderr
    assert "Traceback" not in third.stderr
