"""Our own corpora (tests/intents/corpus/*.yaml), in the shared corpus's format, judged by its rules.

Used by the corpus tests and by bench/calibration.py (which counts the wrong frames per confidence band).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from intents import ContactIndex, ParseResult
from intents.models import TXN_TYPES

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
RECIPIENT_KEYS = ("phone", "till", "paybill", "account", "agent", "store", "bank_code", "contact_id")
_SPECIAL = frozenset({"missing", "errors", "ambiguous", "confident"})


@dataclass(frozen=True)
class Case:
    corpus: str
    text: str
    expect: dict[str, Any]


def corpus_files() -> list[Path]:
    return sorted(CORPUS_DIR.glob("*.yaml"))


def contacts_index() -> ContactIndex:
    return ContactIndex(json.loads((CORPUS_DIR / "contacts.json").read_text(encoding="utf-8")))


def cases(files: list[Path] | None = None) -> list[Case]:
    out: list[Case] = []
    for path in files or corpus_files():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        out.extend(Case(path.stem, item["text"], item["expect"]) for item in data["items"])
    return out


def _confident(r: dict[str, Any]) -> bool:
    return r["type"] in TXN_TYPES and not r["missing"] and not r["errors"] and r["confidence"] >= 80


def judge(expect: dict[str, Any], result: ParseResult) -> tuple[list[str], bool]:
    """(what differs, wrong?) by the rules at the top of shared/corpus/utterances.yaml.

    wrong: the frame's type, amount or a recipient field differs from what was meant, or it is confident
    where it had to ask: the frames the confidence must keep below 80.
    """
    r = result.model_dump(mode="json")
    why = [
        f"{k}: want {v!r} got {r.get(k)!r}" for k, v in expect.items() if k not in _SPECIAL and r.get(k) != v
    ]
    if "missing" in expect and set(r["missing"]) != set(expect["missing"]):
        why.append(f"missing: want {sorted(expect['missing'])} got {sorted(r['missing'])}")
    why += [f"errors: want {e} in {r['errors']}" for e in expect.get("errors", []) if e not in r["errors"]]
    must_ask = bool(_SPECIAL & set(expect) - {"confident"}) or expect.get("confident") is False
    for c in expect.get("ambiguous", []):
        if c not in r["candidates"]:
            why.append(f"candidates: want {c} in {r['candidates']}")
    if must_ask and _confident(r):
        why.append("confident where it should ask")
    if not must_ask and expect.get("type") in TXN_TYPES and (r["missing"] or r["errors"]):
        why.append(f"not actionable: missing={r['missing']} errors={r['errors']}")
    wrong_core = any(k in expect and r.get(k) != expect[k] for k in ("type", "amount", *RECIPIENT_KEYS))
    return why, (must_ask and _confident(r)) or wrong_core
