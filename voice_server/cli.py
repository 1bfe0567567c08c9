"""The `ongea-pesa` command: one argparse tree, each sub-command in its own module under `commands/`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from voice_server.startup_errors import explain

# Each sub-command's name -> the module whose `register(subparsers)` adds its parser and sets `func`.
COMMANDS = {
    "serve": "voice_server.commands.serve",
    "migrate": "voice_server.commands.migrate",
    "user": "voice_server.commands.users",
    "token": "voice_server.commands.users",
    "parse": "voice_server.commands.parse",
    "mpesa-sim": "voice_server.commands.mpesa_sim",
    "mpesa-worker": "voice_server.commands.mpesa_worker",
    "mpesa-float": "voice_server.commands.mpesa_float",
    "mpesa-reverse": "voice_server.commands.mpesa_reverse",
    "agent-config": "voice_server.commands.agent_config",
    "check": "voice_server.commands.check",
    "sweep": "voice_server.commands.sweep",
    "talk": "voice_server.commands.talk",
    "replay": "voice_server.commands.replay",
    "transcripts": "voice_server.commands.transcripts",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: list[str] = []

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._seen = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """One line, not the usage block: what is wrong and where the help is. A flag this parser does not
        know is named, even where argparse would only say that the command is missing."""
        unknown = [
            a
            for a in self._seen
            if a.startswith("-") and a.split("=", 1)[0] not in self._option_string_actions
        ]
        if unknown and "required" in message:
            message = f"unknown option {unknown[0]}"
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of `argv`'s command alone when it names one, so a command imports only what it needs (the
    replay does not load the HTTP server); every command's for `--help`, a typo or no argument at all."""
    parser = _Parser(prog="ongea-pesa", description="Pay with M-Pesa by talking.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for name in (COMMANDS[named],) if named in COMMANDS else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
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
