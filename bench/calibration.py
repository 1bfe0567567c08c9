"""Confidence calibration: the share of wrong frames at each confidence band (a reliability table).

Usage: python bench/calibration.py [--shared ../shared/corpus/utterances.yaml]

Reads every utterance the parser's tests hold with what it must mean: our corpora
(tests/intents/corpus/*.yaml), the cases of tests/intents/test_utterances.py and test_redteam*.py, and the
public sample when it is beside the repo. A frame is *wrong* when acting on it would be wrong: its type,
amount or a recipient field differs from what was meant, or what was said leaves a question open (the case
expects the parser to ask) and the frame is actionable anyway. Only actionable frames are banded: the
confidence decides whether they are acted on (at 80 and above, without asking). The rule: no wrong frame at
80 or above; below 80 the share of wrong frames should rise steeply. Exits 1 when a wrong frame reaches 80.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from intents import ContactIndex, parse  # noqa: E402
from tests.intents import test_redteam, test_redteam2, test_redteam3, test_utterances  # noqa: E402
from tests.intents.conftest import EXTRA_CONTACTS, SAMPLE_CONTACTS  # noqa: E402
from tests.intents.corpora import cases, contacts_index, judge  # noqa: E402

BANDS = [(0, 50), (50, 60), (60, 70), (70, 75), (75, 80), (80, 85), (85, 90), (90, 95), (95, 101)]
MUST_ASK = ("missing", "errors", "ambiguous")


@dataclass(frozen=True)
class Item:
    source: str
    text: str
    expect: dict[str, Any]
    index: ContactIndex


def _from_tests(source: str, rows: Iterable[tuple[Any, ...]], index: ContactIndex) -> list[Item]:
    out = []
    for row in rows:
        text, expect = row[0], dict(row[1])
        if len(row) > 2 and row[2] is False:
            expect["confident"] = False
        if "candidates" in expect:
            expect["ambiguous"] = expect.pop("candidates")
        out.append(Item(source, text, expect, index))
    return out


def items(shared: Path | None) -> list[Item]:
    mine = contacts_index()
    out = [Item(f"corpus:{c.corpus}", c.text, c.expect, mine) for c in cases()]
    sample = ContactIndex(SAMPLE_CONTACTS + EXTRA_CONTACTS)
    out += _from_tests("test_utterances", test_utterances.CASES, sample)
    for module in (test_redteam, test_redteam2, test_redteam3):
        out += _from_tests(module.__name__.rsplit(".", 1)[-1], module.CASES, ContactIndex(module.CONTACTS))
    if shared is not None and shared.exists():
        data = yaml.safe_load(shared.read_text(encoding="utf-8"))
        index = ContactIndex(json.loads((shared.parent / data["contacts"]).read_text(encoding="utf-8")))
        out += [Item("shared sample", i["text"], i["expect"], index) for i in data["items"]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "corpus" / "utterances.yaml")
    a = ap.parse_args()
    rows = items(a.shared)
    bands = {b: [0, 0] for b in BANDS}  # band -> [frames, wrong]
    failures: list[str] = []
    per_source: dict[str, list[int]] = {}
    high_wrong: list[str] = []
    for it in rows:
        r = parse(it.text, it.index)
        why, wrong_core = judge(it.expect, r)
        src = per_source.setdefault(it.source, [0, 0])
        src[0] += 1
        src[1] += not why
        if why:
            failures.append(f"{it.source}: {it.text!r}: {'; '.join(why)}")
        if not r.actionable:
            continue
        open_question = any(k in it.expect for k in MUST_ASK) or it.expect.get("confident") is False
        wrong = wrong_core or open_question
        band = next(b for b in BANDS if b[0] <= r.confidence < b[1])
        bands[band][0] += 1
        bands[band][1] += wrong
        if wrong and r.confidence >= 80:
            high_wrong.append(f"{r.confidence}: {it.text!r}")
    total = sum(n for n, _ in per_source.values())
    passed = sum(p for _, p in per_source.values())
    print(f"utterances={total} read as meant={passed} ({passed / total:.3f})")
    for source, (n, p) in sorted(per_source.items()):
        print(f"  {source:<24} {p}/{n} = {p / n:.3f}")
    print("\nreliability of actionable frames (wrong = acting on it would be wrong):")
    print(f"  {'confidence':<12}{'frames':>8}{'wrong':>8}{'wrong share':>13}")
    for (lo, hi), (n, w) in bands.items():
        share = f"{w / n:.3f}" if n else "-"
        print(f"  {f'{lo}-{hi - 1}':<12}{n:>8}{w:>8}{share:>13}")
    for line in failures:
        print("FAIL", line)
    for line in high_wrong:
        print("WRONG AT 80+", line)
    sys.exit(1 if high_wrong else 0)


if __name__ == "__main__":
    main()
