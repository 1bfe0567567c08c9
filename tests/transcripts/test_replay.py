"""Every transcript under tests/transcripts/ and the four samples of ../shared/corpus/transcripts/
(unchanged), replayed through the session driver, the ledger and the M-Pesa simulator with the server's
payout worker; plus the replay command's own behaviour: wrong expectations and malformed files are
reported in words."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from voice_server.conversation.replay import LocalReplayer, local_replayer
from voice_server.conversation.transcripts import TranscriptError, load_transcript
from voice_server.settings import Settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared" / "corpus" / "transcripts"
OURS = sorted(HERE.glob("*.yaml"))
SAMPLES = sorted(SHARED.glob("*.yaml")) if SHARED.is_dir() else []


@pytest.fixture(scope="module")
async def replayer(
    pool: asyncpg.Pool, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalReplayer]:
    settings = Settings(database_url=database_url, data_dir=tmp_path_factory.mktemp("replay"))  # type: ignore[call-arg]
    async with local_replayer(pool, settings) as r:
        yield r


def test_there_are_enough_transcripts() -> None:
    assert len(OURS) >= 60


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.stem)
async def test_our_transcript(replayer: LocalReplayer, path: Path) -> None:
    report = await replayer.run(load_transcript(path), str(path))
    assert report.ok, report.error


@pytest.mark.skipif(not SAMPLES, reason=f"the shared samples are not here ({SHARED})")
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
async def test_shared_sample(replayer: LocalReplayer, path: Path) -> None:
    report = await replayer.run(load_transcript(path), str(path))
    assert report.ok, report.error


WRONG = """
name: expects the wrong amount
user:
  balance: "1000.00"
  contacts:
    - {name: Mary Wambui, phone_number: "254733444555", nickname: Mama}
turns:
  - user: "send 500 to mama"
    expect:
      proposed: {type: send_phone, amount: "700.00"}
"""


async def test_a_wrong_expectation_fails_in_words(replayer: LocalReplayer, tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(WRONG)
    report = await replayer.run(load_transcript(path), str(path))
    assert not report.ok and report.turn == 1
    assert report.error is not None
    assert 'turn 1 (user: "send 500 to mama")' in report.error
    assert "amount '500.00' instead of '700.00'" in report.error


async def test_a_wrong_final_balance_fails_in_words(replayer: LocalReplayer, tmp_path: Path) -> None:
    path = tmp_path / "final.yaml"
    path.write_text(WRONG.replace('amount: "700.00"', 'amount: "500.00"') + 'final:\n  balance: "1.00"\n')
    report = await replayer.run(load_transcript(path), str(path))
    assert not report.ok
    assert report.error == "final: expected a final balance of 1.00, but it is 1000.00"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            "name: x\nturns:\n  - user: hi\n    expect: {rejectd: expired}\n",
            "turns.0.expect.rejectd",
            "unknown field",
        ),
        ("name: x\nturns:\n  - tap: maybe\n", "turns.0.tap", "confirm"),
        ("name: x\nturns:\n  - {user: hi, pin: '1234'}\n", "turns.0", "exactly one"),
        ("name: x\nuser: {balance: lots}\nturns:\n  - user: hi\n", "user.balance", "not an amount"),
        ("name: x\n", "turns", "missing"),
        ("- just a list\n", "(top level)", "mapping"),
        ("name: [unclosed\n", "(yaml)", "YAML"),
        ("name: x\nturns:\n  - {tap: confirm, asr_confidence: 0.5}\n", "turns.0", "asr_confidence"),
        ("name: x\nturns:\n  - {user: hi, asr_confidence: 2}\n", "turns.0.asr_confidence", "less than"),
        ("name: x\nturns:\n  - tool: {parameters: {}}\n", "turns.0.tool.name", "missing"),
    ],
)
def test_a_malformed_transcript_names_the_file_and_the_field(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TranscriptError) as caught:
        load_transcript(path)
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(path) in str(caught.value)


async def test_the_command_prints_a_line_each_and_exits_1_on_a_failure(
    database_url: str, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(WRONG)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nturns: []\n")
    good = HERE / "en-balance.yaml"
    args = [
        sys.executable,
        "-m",
        "voice_server.cli",
        "replay",
        str(good),
        str(tmp_path),
        "--database-url",
        database_url,
    ]
    env = {"PATH": "/usr/bin:/bin", "ONGEA_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}
    done = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=120, env=env)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert lines[0].startswith("PASS  the balance, asked two ways")
    assert any(line.startswith("ERROR") and "bad.yaml: turns" in line for line in lines)
    assert any(line.startswith("FAIL  expects the wrong amount") for line in lines)
    assert lines[-1].startswith("1 passed, 1 failed, 1 malformed (3 transcripts in")
    as_json = await asyncio.to_thread(
        subprocess.run,
        [*args[:4], str(good), "--database-url", database_url, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["ok"] is True and data["passed"] == 1 and data["transcripts"][0]["ok"] is True


async def test_a_user_the_ledger_refuses_fails_that_transcript_only(
    replayer: LocalReplayer, tmp_path: Path
) -> None:
    path = tmp_path / "rich.yaml"
    path.write_text('name: too rich\nuser: {balance: "99999999999.00"}\nturns:\n  - user: "help"\n')
    report = await replayer.run(load_transcript(path), str(path))
    assert (
        not report.ok and report.error is not None and report.error.startswith("user: the ledger refused it")
    )


async def test_an_unknown_tool_fails_that_transcript_in_words(
    replayer: LocalReplayer, tmp_path: Path
) -> None:
    path = tmp_path / "tool.yaml"
    path.write_text("name: x\nturns:\n  - tool: {name: transfer_everything, parameters: {amount: 5}}\n")
    report = await replayer.run(load_transcript(path), str(path))
    assert not report.ok and report.error == "tool.name: no tool named 'transfer_everything'"
    path.write_text("name: x\nturns:\n  - tool: {name: propose_transaction, parameters: {amount: -5}}\n")
    report = await replayer.run(load_transcript(path), str(path))
    assert not report.ok and report.error is not None and report.error.startswith("tool.parameters:")
