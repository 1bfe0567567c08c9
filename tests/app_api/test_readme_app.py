"""The README as a newcomer uses it: its "Try it" block, pasted as it is (only the server's port and a fresh
phone number put in), shows the balance rise after a top-up; and every flag of every command is documented."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import ServeProcess
from voice_server.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def try_it_block() -> str:
    section = README.split("Try it", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert match
    return match.group(1)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DARAJA_", "ONGEA_", "STRIPE_"))}
    env = {**clean, "ONGEA_DATA_DIR": str(tmp_path / ".ongea"), "DATABASE_URL": database_url}
    server = ServeProcess([], env, limit=60)
    yield server.base.removeprefix("http://"), env
    server.stop()


def test_try_it_works_when_pasted(served: tuple[str, dict[str, str]]) -> None:
    address, env = served
    if not (ROOT / ".venv" / "bin" / "ongea-pesa").exists():
        pytest.skip("the README's commands run from a checkout with its .venv")
    host, port = address.rsplit(":", 1)
    script = try_it_block().replace("PORT=8080", f"PORT={port}").replace("localhost:", f"{host}:")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "balance before: 5000.00" in done.stdout
    assert '"status": "pending"' in done.stdout
    assert "balance after: 5500.00" in done.stdout, done.stdout


def _flags(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[str, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _flags(sub, [*path, name])
        elif action.option_strings and action.dest != "help":
            yield " ".join(path), action.option_strings[-1]


def test_every_command_and_flag_is_in_the_commands_table() -> None:
    table = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = {
        re.split(r"(?<!\\)\|", line)[1] for line in table.splitlines() if line.startswith("| `ongea-pesa ")
    }
    missing = [
        (command, flag)
        for command, flag in _flags(build_parser(), [])
        if not any(f"`ongea-pesa {command} " in row and flag in row for row in rows)
    ]
    assert not missing, f"README's Commands table lacks: {missing}"


def test_for_developers_api_payment_works_when_pasted(served: tuple[str, dict[str, str]]) -> None:
    """The "For developers" block on a real `serve`: a key, a trusted payee, one payment sent twice with one
    Idempotency-Key answers the same transaction twice."""
    address, env = served
    if not (ROOT / ".venv" / "bin" / "ongea-pesa").exists():
        pytest.skip("the README's commands run from a checkout with its .venv")
    section = README.split("For developers: API keys", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert match
    port = address.rsplit(":", 1)[1]
    script = match.group(1).replace("PORT=8080", f"PORT={port}")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"fee"')]
    assert len(answers) == 2 and answers[0] == answers[1], done.stdout
    assert answers[0]["status"] == "processing" and answers[0]["amount"] == "150.00"
