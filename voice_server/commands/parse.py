"""`ongea-pesa parse`: run the intent parser on text or a stream of lines (I/O only; logic in `intents`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from voice_server.commands.arg_types import probability


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("parse", help="turn a spoken command into a transaction intent (JSON)")
    p.add_argument(
        "--contacts", required=True, type=Path, help="JSON list of {id, name, phone_number, nickname}"
    )
    p.add_argument(
        "--jsonl", action="store_true", help="read one utterance per line on stdin, write JSON lines"
    )
    p.add_argument(
        "--asr-confidence", type=probability, default=None, help="the recogniser's confidence, 0..1"
    )
    p.add_argument("text", nargs="?", default=None, help="the utterance (unless --jsonl)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from intents import ContactIndex, parse

    try:
        raw = json.loads(args.contacts.read_text(encoding="utf-8"))
        index = ContactIndex(raw if isinstance(raw, list) else [])
    except (OSError, ValueError) as exc:
        print(f"parse: cannot read contacts {args.contacts}: {exc}", file=sys.stderr)
        return 2
    if args.jsonl:
        out = sys.stdout
        for line in sys.stdin:
            text = line.rstrip("\r\n")
            out.write(parse(text, index, asr_confidence=args.asr_confidence).to_json() + "\n")
            out.flush()
        return 0
    if args.text is None:
        print("parse: give TEXT or --jsonl", file=sys.stderr)
        return 2
    print(parse(args.text, index, asr_confidence=args.asr_confidence).to_json())
    return 0
