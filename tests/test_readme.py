"""The README is the manual: it must name every setting, and its Quick start must stay two commands."""

from __future__ import annotations

import re
from pathlib import Path

from voice_server.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def env_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names.append(str(choices[0]) if choices else f"ONGEA_{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    missing = [env for env in env_names() if f"`{env}`" not in README]
    assert not missing, f"README does not document: {missing}"


def test_quick_start_is_two_commands_and_ci_runs_the_test_one() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    commands = [line for block in blocks[:2] for line in block.strip().splitlines()]
    assert len(commands) == 2
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
