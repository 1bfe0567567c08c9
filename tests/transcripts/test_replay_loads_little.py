"""`ongea-pesa replay` loads what a replay needs (the driver, the dialogue, the ledger, the simulator and the
M-Pesa callback routes), not the HTTP server: its app, API, pages and WebSocket are never imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from voice_server import cli

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Modules only the HTTP server needs.
SERVER_ONLY = (
    "voice_server.app",
    "voice_server.app_api.routes",
    "voice_server.app_api.me",
    "voice_server.app_api.billing",
    "voice_server.session_routes",
    "voice_server.page_routes",
    "voice_server.openapi",
    "voice_server.webhooks",
    "voice_server.tools.routes",
    "voice_server.ws.handler",
    "voice_server.events_routes",
    "voice_server.commands.serve",
)


def test_the_replay_command_replays_without_importing_the_server(database_url: str, tmp_path: Path) -> None:
    transcript = HERE / "en-balance.yaml"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "voice_server.cli", "replay", str(transcript), "--json"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "ONGEA_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["passed"] == 1
    imported = {
        line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    assert "voice_server.conversation.replay" in imported  # the check reads what was really imported
    assert sorted(imported.intersection(SERVER_ONLY)) == []


def test_every_command_is_found_by_its_name() -> None:
    """The name -> module table the CLI loads one command with names every command, and only those."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    assert commands.choices is not None
    assert sorted(commands.choices) == sorted(cli.COMMANDS)
    for name, module in cli.COMMANDS.items():
        one = cli.build_parser([name, "--help"])
        assert list(next(a for a in one._actions if a.dest == "command").choices or ()) == [
            n for n, m in cli.COMMANDS.items() if m == module
        ]
