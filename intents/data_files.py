"""The packaged data files under `intents/data/`, read once at import (never while parsing).

A module of its own, below the vocabulary: the vocabulary is built from the bank and biller directories, and
those read their own files too, so the reader cannot live in the vocabulary without an import cycle."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml


def load_yaml(name: str) -> Any:
    """Read one packaged data file (done at import, never while parsing)."""
    text = resources.files("intents").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)
