"""The `ongea-pesa` command: one argparse tree, each sub-command in its own module under `commands/`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Sub-command modules; each exposes `register(subparsers)` which adds its parser and sets `func`.
COMMAND_MODULES = (
    "voice_server.commands.serve",
    "voice_server.commands.migrate",
    "voice_server.commands.users",
    "voice_server.commands.parse",
    "voice_server.commands.mpesa_sim",
    "voice_server.commands.agent_config",
    "voice_server.commands.sweep",
    "voice_server.commands.talk",
    "voice_server.commands.replay",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ongea-pesa", description="Pay with M-Pesa by talking.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
