"""A complaint becomes a regression test: real conversations with a real `ongea-pesa serve` and PostgreSQL
(over the WebSocket, over the agent's tools, with corrections, a wrong and a right PIN, refusals and a payout
M-Pesa refuses) are exported with `ongea-pesa transcripts export` and replayed with `ongea-pesa replay`. They
pass on the same code, and fail when a setting changes what the dialogue does. A redacted export holds none of
the names or numbers and still replays; another user's session is not theirs to read or export; the PIN typed
is in no export."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from tests.server_conv.conftest import CONTACTS, MakeUser, Server, User, server_env
from tests.server_conv.test_receipts import receipt_turn, sim_rule
from tests.server_conv.wsclient import Conv, mint, tool

PIN = "7395"
WRONG = "2684"
FAILING_AMOUNT = 613  # the simulator refuses payouts of this amount (this file's own)


def cli(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice_server.cli", *args],
        env=server_env(tmp, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


async def settle(pool: asyncpg.Pool, user: User, wait: float = 60) -> None:
    """Until M-Pesa has answered every payout of the user."""
    deadline = time.monotonic() + wait
    while await pool.fetchval(
        "SELECT count(*) FROM transactions WHERE user_id = $1 AND status = 'processing'", user.user_id
    ):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)


async def ws_conversation(server: Server, user: User) -> str:
    """Corrections, a tap, a wrong PIN then the right one, a refusal by the person and one by the ledger."""
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    first = await conv.say("send 500 to mama")
    assert first.summary["proposal"]["amount"] == "500.00", first.events
    corrected = await conv.say("no, make it 700")
    assert corrected.summary["proposal"]["amount"] == "700.00", corrected.events
    other = await conv.say("to John Kamau instead")
    assert other.summary["proposal"]["phone"] == "254722111222", other.events
    assert (await conv.say("yes")).summary["outcome"] == "committed"
    await receipt_turn(conv)  # M-Pesa's answer is told before the next request (a turn of its own)
    big = await conv.say("send 1500 to mama")
    keypad = (await conv.answer(big.calls("show_proposal")[0]["tool_call_id"], "confirm")).calls(
        "request_pin"
    )
    assert keypad
    wrong = await conv.answer(keypad[0]["tool_call_id"], WRONG)
    assert wrong.summary["rejected"] == "wrong_pin", wrong.events
    again = wrong.calls("request_pin")
    done = await conv.answer(again[0]["tool_call_id"], PIN)
    assert done.summary["outcome"] == "committed", done.events
    await receipt_turn(conv)
    await conv.say("send 300 to 0711222333")
    assert (await conv.say("no")).summary["outcome"] == "cancelled"
    refused = await conv.say("send 90000 to mama")
    assert refused.summary["rejected"] == "insufficient_balance", refused.events
    await conv.close()
    return str(session["session_id"])


async def tools_conversation(server: Server, user: User) -> str:
    """The agent's tools: a command passed with the recogniser's confidence, a correction by
    propose_transaction, a confirm, the balance, and a proposal dropped by cancel_transaction."""
    session = await mint(server.url, user.token)
    token, sid = session["session_token"], session["session_id"]

    async def call(name: str, **body: Any) -> dict[str, Any]:
        status, answer = await tool(server.url, token, name, {"session_id": sid, **body})
        assert status == 200, answer
        return answer

    assert (await call("parse_command", text="send 400 to mama", asr_confidence=0.91))["amount"] == "400.00"
    changed = await call("propose_transaction", type="send_phone", amount=450, recipient="John Kamau")
    assert changed["outcome"] == "proposed", changed
    done = await call("confirm_transaction", proposal_id=changed["proposal_id"], version=changed["version"])
    assert done["outcome"] == "committed", done
    assert (await call("get_balance"))["outcome"] == "answered"
    dropped = await call("parse_command", text="send 200 to JK")
    assert (await call("cancel_transaction", proposal_id=dropped["proposal_id"]))["outcome"] == "cancelled"
    return str(sid)


async def failed_payout_conversation(server: Server, user: User) -> str:
    await sim_rule(server, FAILING_AMOUNT, outcome="fail")
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    assert (await conv.say(f"send {FAILING_AMOUNT} to mama")).summary["outcome"] == "proposed"
    assert (await conv.say("yes")).summary["outcome"] == "committed"
    told = await receipt_turn(conv)
    assert "back in your wallet" in told.said, told.said
    await conv.close()
    return str(session["session_id"])


def export(tmp: Path, database_url: str, session_id: str, name: str, *extra: str) -> Path:
    out = tmp / f"{name}.yaml"
    done = cli(
        tmp, "transcripts", "export", session_id, "-o", str(out), "--database-url", database_url, *extra
    )
    assert done.returncode == 0, done.stderr
    return out


def replay(tmp: Path, database_url: str, *paths: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return cli(tmp, "replay", "--database-url", database_url, *map(str, paths), **env)


async def test_conversations_exported_replay_and_catch_a_changed_dialogue(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    spoken, tooled, failing = [await make_user(plan="basic", pin=PIN) for _ in range(3)]
    sessions = {
        "ws": await ws_conversation(server, spoken),
        "tools": await tools_conversation(server, tooled),
        "failed": await failed_payout_conversation(server, failing),
    }
    for user in (spoken, tooled, failing):
        await settle(pool, user)
    files = {name: export(tmp_path, database_url, sid, name) for name, sid in sessions.items()}

    ws = yaml.safe_load(files["ws"].read_text())
    assert ws["user"]["balance"] == "10000.00" and ws["user"]["plan"] == "basic"
    assert {c["name"] for c in ws["user"]["contacts"]} == {c[0] for c in CONTACTS}
    kinds = [next(k for k in ("user", "tap", "pin", "wait", "tool") if k in t) for t in ws["turns"]]
    assert kinds == ["user"] * 4 + ["wait", "user", "tap", "pin", "pin", "wait"] + ["user"] * 3, kinds
    assert ws["turns"][1]["expect"]["proposed"]["amount"] == "700.00"
    assert ws["turns"][7]["expect"]["rejected"] == "wrong_pin" and ws["turns"][8]["expect"]["committed"]
    assert [t["status"] for t in ws["final"]["transactions"]] == ["completed", "completed", "cancelled"]
    tools = yaml.safe_load(files["tools"].read_text())
    assert [t["tool"]["name"] for t in tools["turns"] if "tool" in t] == [
        "propose_transaction",
        "confirm_transaction",
        "get_balance",
        "cancel_transaction",
    ]
    assert tools["turns"][0] == {**tools["turns"][0], "user": "send 400 to mama", "asr_confidence": 0.91}
    failed = yaml.safe_load(files["failed"].read_text())
    assert failed["gateway"] == {"result": "failed"}
    assert any(
        "back in your wallet" in " ".join(t["expect"].get("say_contains", [])) for t in failed["turns"]
    )
    assert failed["final"]["balance"] == "10000.00"

    # The PIN typed (and the wrong one) is in no export: the export made its own up.
    texts = [f.read_text() for f in files.values()]
    for digits in (PIN, WRONG):
        assert not any(re.search(rf"(?<!\d){digits}(?!\d)", text) for text in texts), digits

    passed = replay(tmp_path, database_url, *files.values())
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("PASS") == 3, passed.stdout

    # The same files fail when the dialogue changes: with payments up to 2,000 needing no PIN, the 1,500
    # is read back as needing none (and would be committed at the tap).
    changed = replay(tmp_path, database_url, files["ws"], ONGEA_PIN_THRESHOLD="2000")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "FAIL" in changed.stdout and 'turn 6 (user: "send 1500 to mama")' in changed.stdout, changed.stdout
    assert "needs_pin False instead of True" in changed.stdout, changed.stdout
    # and a wording change (a read-back of another amount) is caught as well
    edited = tmp_path / "edited.yaml"
    edited.write_text(files["ws"].read_text().replace("make it 700", "make it 7000", 1))
    wording = replay(tmp_path, database_url, edited)
    assert wording.returncode == 1 and "turn 2" in wording.stdout, wording.stdout
    # (the setting is back for what follows)
    assert replay(tmp_path, database_url, files["ws"]).returncode == 0


async def test_a_redacted_export_holds_no_name_or_number_and_still_replays(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    user = await make_user(plan="basic", pin=PIN)
    sid = await ws_conversation(server, user)
    await settle(pool, user)
    plain = export(tmp_path, database_url, sid, "plain")
    redacted = export(tmp_path, database_url, sid, "redacted", "--redact")
    text = redacted.read_text()
    originals = ["0711222333", "0711 222 333", "254711222333", user.phone, user.phone[3:]]
    for name, phone, nickname in CONTACTS:
        originals += [name, *name.split(), nickname, phone, "0" + phone[3:], phone[3:]]
        originals.append(f"0{phone[3:6]} {phone[6:9]} {phone[9:]}")  # as the read-back says it
    assert all(o in plain.read_text() for o in ("Mary Wambui", "254722111222", "0711222333"))
    found = [o for o in originals if o.lower() in text.lower()]
    assert not found, found
    data = yaml.safe_load(text)
    contacts = {c["name"]: c for c in data["user"]["contacts"]}
    nicknames = {c["nickname"].lower() for c in contacts.values()}
    # The words of the command are kept, the nickname replaced by the made-up contact's.
    first = data["turns"][0]["user"]
    assert first.startswith("send 500 to ") and first.split()[-1] in nicknames, first
    # Amounts are kept; a made-up number is a valid Kenyan mobile number, the same one each time.
    assert data["turns"][1]["expect"]["proposed"]["amount"] == "700.00"
    john = data["turns"][2]["expect"]["proposed"]["phone"]
    assert john in {c["phone_number"] for c in contacts.values()}
    assert data["final"]["transactions"][0]["phone"] == john
    done = replay(tmp_path, database_url, redacted)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_another_users_session_cannot_be_read_or_exported_as_them(
    server: Server, make_user: MakeUser, database_url: str, tmp_path: Path
) -> None:
    owner, other = await make_user(plan="basic"), await make_user(plan="basic")
    sid = await tools_conversation(server, owner)
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/v1/sessions/{sid}/transcript"
        async with http.get(url, headers=other.headers) as r:
            assert r.status == 404, await r.text()
        async with http.get(url, headers=owner.headers) as r:
            assert r.status == 200
            body = await r.json()
    assert [t["channel"] for t in body["turns"]] == ["tools"] * 6
    assert body["turns"][0]["heard"] == "send 400 to mama" and body["turns"][0]["asr_confidence"] == "0.910"
    assert body["turns"][1]["tool"] == "propose_transaction"
    assert "session_id" not in body["turns"][1]["tool_parameters"]

    theirs = cli(
        tmp_path, "transcripts", "export", sid, "--user", other.phone, "--database-url", database_url
    )
    assert theirs.returncode == 1 and "no such voice session" in theirs.stderr, theirs.stderr
    assert "Mary" not in theirs.stdout
    mine = cli(tmp_path, "transcripts", "export", sid, "--user", owner.phone, "--database-url", database_url)
    assert mine.returncode == 0 and "send 400 to mama" in mine.stdout, mine.stderr
    for bad in ("vs_nothing", "x' OR '1'='1", ""):
        done = cli(tmp_path, "transcripts", "export", bad, "--database-url", database_url)
        assert done.returncode == 1 and "no such voice session" in done.stderr, (bad, done.stderr)


async def test_a_pin_said_aloud_or_typed_is_in_no_kept_turn_and_no_export(
    server: Server, make_user: MakeUser, pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    user = await make_user(plan="basic", pin=PIN)
    session = await mint(server.url, user.token)
    conv, _ = await Conv.open(session["ws_url"])
    await conv.say("send 1500 to mama")
    aloud = await conv.say(PIN)  # at a read-back that needs the PIN: a PIN said aloud, never used
    assert aloud.summary["asked"] == "pin" and aloud.summary["outcome"] == "asked", aloud.events
    await conv.say(f"my pin is {PIN}")
    keypad = (await conv.say("yes")).calls("request_pin")
    done = await conv.answer(keypad[0]["tool_call_id"], PIN)
    assert done.summary["outcome"] == "committed", done.events
    await receipt_turn(conv)
    await conv.close()
    await settle(pool, user)
    kept = await pool.fetch("SELECT * FROM voice_session_turns WHERE session_id = $1", session["session_id"])
    assert len(kept) == 6 and PIN not in str([dict(r) for r in kept])
    async with aiohttp.ClientSession(headers=user.headers) as http:
        async with http.get(f"{server.url}/v1/sessions/{session['session_id']}/transcript") as r:
            assert PIN not in await r.text()
    for extra in ((), ("--redact",)):
        out = export(tmp_path, database_url, session["session_id"], "pin" + "".join(extra), *extra)
        assert not re.search(rf"(?<!\d){PIN}(?!\d)", out.read_text()), out.read_text()
        data = yaml.safe_load(out.read_text())
        assert data["turns"][1]["user"] == data["turns"][2]["user"] == f"my PIN is {data['user']['pin']}"
        done_replay = replay(tmp_path, database_url, out)
        assert done_replay.returncode == 0, done_replay.stdout + done_replay.stderr
