"""The turn log and /metrics carry the right values, not just the right names: an operator reads a session's
turns from the log (what it produced, how long it took) and the load from the gauges and counters, so a line
without its events or a gauge that never comes down would mislead them."""

from __future__ import annotations

import re

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.server_conv.conftest import METRICS_HEADERS, MakeUser, Server
from tests.server_conv.wsclient import Conv, Turn, mint
from tests.serving import poll_until

_LINE = re.compile(
    r"turn session=(?P<session>\S+) channel=(?P<channel>\S+) input=(?P<input>\S+) "
    r"events=(?P<events>\S+) outcome=(?P<outcome>\S+) took=(?P<took>\d+\.\d)ms$"
)


def _turn_lines(server: Server, session_id: str) -> list[dict[str, str]]:
    """The parsed `turn` log lines of one session, in order."""
    found = []
    for line in server.output().splitlines():
        match = _LINE.search(line)
        if match and match["session"] == session_id:
            found.append(match.groupdict())
    return found


def _kinds(turn: Turn) -> str:
    """What the log's `events=` should say for a turn the client received: its spoken answers, then its
    client tool calls in order."""
    says = ["agent_response" for e in turn.events if e["type"] == "agent_response"]
    calls = [
        f"client_tool_call:{e['client_tool_call']['tool_name']}"
        for e in turn.events
        if e["type"] == "client_tool_call"
    ]
    return ",".join(says + calls)


async def _metrics(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/metrics", headers=METRICS_HEADERS) as r:
            assert r.status == 200
            text = await r.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _turns(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], outcome: str) -> float:
    return values.get(("ongea_turns_total", (("channel", "ws"), ("outcome", outcome))), 0.0)


async def test_one_log_line_per_turn_with_its_session_events_outcome_and_time(
    server: Server, make_user: MakeUser
) -> None:
    user = await make_user(balance="1500.00")
    session = await mint(server.url, user.token)
    sid = session["session_id"]
    conv, greeting = await Conv.open(session["ws_url"])
    proposed = await conv.say("send 100 to mama")
    card = proposed.calls("show_proposal")[0]
    done = await conv.answer(card["tool_call_id"], "confirm")
    await conv.close()
    assert done.summary["outcome"] == "committed", done.events

    await poll_until("three turn lines", lambda: len(_turn_lines(server, sid)) >= 3)
    lines = _turn_lines(server, sid)
    assert [(x["channel"], x["input"]) for x in lines] == [
        ("ws", "greeting"),
        ("ws", "Utterance"),
        ("ws", "Tap"),
    ]
    assert [x["outcome"] for x in lines[1:]] == ["proposed", "committed"]
    assert [x["events"] for x in lines] == [_kinds(greeting), _kinds(proposed), _kinds(done)]
    assert re.fullmatch(
        r"agent_response(,agent_response)*,client_tool_call:show_proposal", lines[1]["events"]
    )
    assert re.fullmatch(r"agent_response(,agent_response)*,client_tool_call:show_receipt", lines[2]["events"])
    assert all(0 < float(x["took"]) < 10_000 for x in lines), lines


async def test_metrics_follow_open_sockets_and_count_turns(server: Server, make_user: MakeUser) -> None:
    user = await make_user(balance="1500.00")
    session = await mint(server.url, user.token)

    async def open_sessions(expected: float) -> bool:
        return (await _metrics(server)).get(("ongea_ws_open_sessions", ()), -1.0) == expected

    await poll_until("no open sessions before", lambda: open_sessions(0))  # earlier tests' sockets closed
    before = await _metrics(server)
    conv, _ = await Conv.open(session["ws_url"])
    await poll_until("the gauge to count the socket", lambda: open_sessions(1))
    proposed = await conv.say("send 100 to mama")
    after_proposal = await _metrics(server)
    assert _turns(after_proposal, "proposed") - _turns(before, "proposed") == 1
    assert _turns(after_proposal, "committed") == _turns(before, "committed")
    done = await conv.answer(proposed.calls("show_proposal")[0]["tool_call_id"], "confirm")
    assert done.summary["outcome"] == "committed"
    during = await _metrics(server)
    await conv.close()
    await poll_until("the gauge to drop the closed socket", lambda: open_sessions(0))

    assert during[("ongea_ws_open_sessions", ())] == 1
    assert _turns(during, "committed") - _turns(before, "committed") == 1
    count = ("ongea_turn_seconds_count", ())
    assert during[count] - before.get(count, 0.0) == 3  # greeting, proposal, tap
    total = sum(v for (name, _), v in during.items() if name == "ongea_turns_total")
    assert total - sum(v for (name, _), v in before.items() if name == "ongea_turns_total") == 3
