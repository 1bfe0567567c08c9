"""Argument types the commands share, so a bad value is refused by argparse naming the flag it came with
(`argument --port: ...`), before any setting or database is touched."""

from __future__ import annotations

import argparse
import math


def port_number(text: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 0 to 65535")
    return port


def probability(text: str) -> float:
    """A confidence from 0 to 1 (a recogniser's)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside 0 to 1")
    return value
