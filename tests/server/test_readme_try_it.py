"""The README's Try-it block, pasted as it is (only the port line set to the port the server was started on),
twice in a row into `sh` beside a real `serve`: both runs make a user, show the balance before and after the
top-up, and print no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

from tests.serving import ServeProcess

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def try_it_block() -> str:
    section = README.split("Try it, in another shell", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block is not None
    return block.group(1)


def test_the_try_it_block_runs_twice_without_tracebacks(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "ELEVENLABS_"))}
    env.update(
        DATABASE_URL=database_url,
        ONGEA_DATA_DIR=str(tmp_path / ".ongea"),
        ONGEA_JWT_SECRET="try-it-jwt-secret-" + uuid.uuid4().hex,
    )
    server = ServeProcess([], env)
    try:
        port = server.base.rsplit(":", 1)[1]
        block = try_it_block()
        assert block.startswith("PORT=8080"), "the block starts by naming the port"
        script = re.sub(r"^PORT=8080\b", f"PORT={port}", block)
        (tmp_path / ".venv").symlink_to(REPO / ".venv")
        for run in (1, 2):
            done = subprocess.run(
                ["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
            )
            said = done.stdout + done.stderr
            assert done.returncode == 0, (run, said)
            assert "Traceback" not in said, (run, said)
            assert "balance before: 5000.00" in said and "balance after: 5500.00" in said, (run, said)
    finally:
        server.stop()
