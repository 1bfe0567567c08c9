"""`ongea-pesa parse` end to end: one-shot, JSON lines, and the shared scorer over the sample corpus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voice_server.cli import main

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
KEYS = [
    "text",
    "type",
    "amount",
    "phone",
    "till",
    "paybill",
    "account",
    "agent",
    "store",
    "bank_code",
    "contact_id",
    "candidates",
    "missing",
    "errors",
    "confidence",
    "period",
    "language",
]


@pytest.fixture
def contacts_file(tmp_path: Path, sample_contacts: list[dict[str, object]]) -> Path:
    path = tmp_path / "contacts.json"
    path.write_text(json.dumps(sample_contacts), encoding="utf-8")
    return path


def test_one_utterance_prints_the_spec_table(contacts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse", "--contacts", str(contacts_file), "tuma elfu moja kwa John Doe"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == KEYS
    assert out["amount"] == "1000.00" and out["contact_id"] == "c01" and out["phone"] == "254712345678"
    assert out["till"] == "" and out["candidates"] == [] and out["confidence"] >= 80


def test_jsonl_streams_one_line_per_utterance(contacts_file: Path) -> None:
    lines = ["send 100 to mama", "", "what's my balance", "send 100 to John", "ñ'; DROP TABLE x;--"]
    proc = subprocess.run(
        [sys.executable, "-m", "voice_server.cli", "parse", "--contacts", str(contacts_file), "--jsonl"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["text"] for o in out] == lines
    assert out[0]["contact_id"] == "c03"
    assert out[1]["type"] is None
    assert out[2]["type"] == "check_balance"
    assert set(out[3]["candidates"]) == {"c01", "c02"}


def test_asr_confidence_lowers_the_score(contacts_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["parse", "--contacts", str(contacts_file), "--asr-confidence", "0.5", "send 100 to mama"])
    assert json.loads(capsys.readouterr().out)["confidence"] < 80


def test_bad_contacts_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert main(["parse", "--contacts", str(missing), "send 100 to mama"]) == 2


@pytest.mark.skipif(
    not (SHARED / "tools" / "score_intents.py").exists(), reason="shared folder not beside repo"
)
def test_shared_scorer_passes_on_the_sample_corpus() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(SHARED / "tools" / "score_intents.py"),
            str(SHARED / "corpus" / "utterances.yaml"),
            "--cmd",
            f"{sys.executable} -m voice_server.cli parse",
            "--min-accuracy",
            "0.98",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "confidently_wrong=0" in proc.stdout
