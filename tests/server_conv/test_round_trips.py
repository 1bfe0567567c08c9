"""How many times a turn waits on PostgreSQL, read off the wire between a real `serve` and the real database
(tests/pgwire.py): a payment's turn is BEGIN, the locked session row with the user's facts (lock and load),
the ledger's call (act), and the state with the turn's record sent with the COMMIT (store). Four, where it
was six (the state and the COMMIT apart, the record by a statement of its own after the turn)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.pgwire import Relay, Trip
from tests.server_conv.conftest import MakeUser, Server, start_server
from tests.server_conv.wsclient import Conv, mint, tool


@pytest.fixture(scope="module")
def relay(database_url: str) -> Iterator[Relay]:
    relay = Relay(database_url)
    yield relay
    relay.close()


@pytest.fixture(scope="module")
def relayed(relay: Relay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose every connection to PostgreSQL goes through the relay."""
    srv = start_server(relay.url, tmp_path_factory.mktemp("srv"))
    yield srv
    assert srv.stop() == 0, srv.output()[-3000:]


def _turn(trips: list[Trip]) -> list[Trip]:
    """The round trips of the one turn among `trips`: on the connection that locked the session row, from its
    BEGIN to its COMMIT. Preparing a statement (once per connection) is not part of a turn's steady cost and
    is left out (a Flush); its execution is counted."""
    lock = next(t for t in trips if "FOR UPDATE OF s" in t.text())
    mine = [t for t in trips if t.connection == lock.connection and t.kind != "flush"]
    begin = max(i for i, t in enumerate(mine) if t.at <= lock.at and t.text().rstrip(";") == "BEGIN")
    end = next(i for i, t in enumerate(mine) if i > begin and "COMMIT" in t.text())
    return mine[begin : end + 1]


def _shape(turn: list[Trip]) -> list[str]:
    """Each round trip by what it did."""
    names = []
    for trip in turn:
        text = trip.text().rstrip(";")
        if text == "BEGIN":
            names.append("begin")
        elif "FOR UPDATE OF s" in text:
            names.append("lock and load")
        elif "ledger_propose_or_refusal" in text:
            names.append("propose")
        elif "ledger_confirm_or_refusal" in text:
            names.append("confirm")
        elif "voice_turn_store" in text and "COMMIT" in text:
            names.append("store and commit")
        else:
            names.append(text[:80])
    return names


def _elsewhere(trips: list[Trip], turn: list[Trip]) -> list[str]:
    """What else wrote a turn's record or state while the turn ran (a record kept apart would show here)."""
    ids = {id(t) for t in turn}
    return [
        t.text()
        for t in trips
        if id(t) not in ids and any(w in t.text() for w in ("voice_session_turns", "voice_turn_store"))
    ]


async def _transcript(server: Server, session: dict[str, Any]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {session['session_token']}"}
    url = f"{server.url}/v1/sessions/{session['session_id']}/transcript"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        assert r.status == 200, await r.text()
        return list((await r.json())["turns"])


async def test_a_payment_by_the_tools_is_four_round_trips_a_turn(
    relayed: Server, relay: Relay, make_user: MakeUser
) -> None:
    user = await make_user(balance="10000.00", pin=None)
    session = await mint(relayed.url, user.token)
    token, sid = session["session_token"], session["session_id"]
    payment = {"session_id": sid, "type": "buy_goods_till", "amount": "10", "till": "123456"}
    for _ in range(3):  # the statements are prepared on the pool's connections
        status, proposed = await tool(relayed.url, token, "propose_transaction", payment)
        assert status == 200 and "proposal_id" in proposed, proposed
        body = {"session_id": sid, "proposal_id": proposed["proposal_id"], "version": proposed["version"]}
        status, confirmed = await tool(relayed.url, token, "confirm_transaction", body)
        assert confirmed.get("outcome") == "committed", confirmed

    start = time.monotonic()
    status, proposed = await tool(relayed.url, token, "propose_transaction", payment)
    trips = relay.since(start)
    assert status == 200 and "proposal_id" in proposed, proposed
    turn = _turn(trips)
    assert _shape(turn) == ["begin", "lock and load", "propose", "store and commit"], _shape(turn)
    assert _elsewhere(trips, turn) == []

    start = time.monotonic()
    body = {"session_id": sid, "proposal_id": proposed["proposal_id"], "version": proposed["version"]}
    status, confirmed = await tool(relayed.url, token, "confirm_transaction", body)
    trips = relay.since(start)
    assert confirmed.get("outcome") == "committed", confirmed
    turn = _turn(trips)
    assert _shape(turn) == ["begin", "lock and load", "confirm", "store and commit"], _shape(turn)
    assert _elsewhere(trips, turn) == []

    # Each turn was kept, by its own store: the last two are the propose and the confirm just made.
    kept = await _transcript(relayed, session)
    assert [t["tool"] for t in kept] == ["propose_transaction", "confirm_transaction"] * 4, kept
    assert kept[-1]["outcome"] == "committed" and kept[-1]["committed"], kept[-1]
    assert [t["seq"] for t in kept] == list(range(1, 9))


async def test_a_spoken_turn_is_four_round_trips_and_kept_word_for_word(
    relayed: Server, relay: Relay, make_user: MakeUser
) -> None:
    user = await make_user(balance="10000.00")
    session = await mint(relayed.url, user.token)
    conv, _greeting = await Conv.open(session["ws_url"])
    try:
        await conv.say("what is my balance")  # prepares what a spoken turn needs
        start = time.monotonic()
        said = await conv.say("send 1500 to mama")
        trips = relay.since(start)
        assert said.calls("show_proposal"), said.events
        turn = _turn(trips)
        assert _shape(turn) == ["begin", "lock and load", "propose", "store and commit"], _shape(turn)
        assert _elsewhere(trips, turn) == []
        # The store goes as text with the COMMIT: quotes and backslashes in what was heard are kept as said.
        odd = "it's Mama's \\ number, isn''t it? \\' ; COMMIT; --"
        await conv.say(odd)
    finally:
        await conv.close()
    heard = [t["heard"] for t in await _transcript(relayed, session)]
    assert heard == ["what is my balance", "send 1500 to mama", odd], heard
