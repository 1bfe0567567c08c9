"""The `ongea-pesa` command: one argparse tree, each sub-command in its own module under `commands/`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from voice_server.startup_errors import explain

# Sub-command modules; each exposes `register(subparsers)` which adds its parser and sets `func`.
COMMAND_MODULES = (
    "voice_server.commands.serve",
    "voice_server.commands.migrate",
    "voice_server.commands.users",
    "voice_server.commands.parse",
    "voice_server.commands.mpesa_sim",
    "voice_server.commands.mpesa_worker",
    "voice_server.commands.agent_config",
    "voice_server.commands.sweep",
    "voice_server.commands.talk",
    "voice_server.commands.replay",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: what is wrong and where the help is."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ongea-pesa", description="Pay with M-Pesa by talking.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except Exception as exc:  # a bad configuration is one clear line and exit 1; a bug still shows itself
        message = explain(exc)
        if message is None:
            raise
        command = " ".join(str(c) for c in (args.command, getattr(args, "user_command", None)) if c)
        print(f"ongea-pesa {command}: {message}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
