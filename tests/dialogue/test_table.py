"""Every (phase, event kind) pair of the dialogue's table, one test each: where it leads and what it asks
the ledger or the app to do. Pairs not in the table are ignored and change nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from tests.dialogue.helpers import NOW, PID, WORLD, live, state_in
from voice_server.dialogue.events import (
    AskBalance,
    BalanceTold,
    Committed,
    ConfirmRefused,
    Event,
    HistoryTold,
    PayoutSettled,
    PinEntry,
    PinResult,
    ProposalMade,
    ProposalRefused,
    ProposalView,
    SpendingTold,
    Tap,
    Tick,
    ToolCancel,
    ToolConfirm,
    ToolPropose,
    Utterance,
)
from voice_server.dialogue.machine import TRANSITIONS, kind_of, step, table_markdown
from voice_server.dialogue.state import (
    Cancel,
    CheckPin,
    Confirm,
    EndSession,
    FetchBalance,
    FetchHistory,
    FetchSpending,
    Note,
    Propose,
    Show,
    Speak,
)

VIEW = ProposalView(PID, 1, "send_phone", Decimal("500"), Decimal("10"), phone="254733444555")

EVENTS: dict[str, Event] = {
    "tick": Tick(),
    "yes": Utterance("yes"),
    "no": Utterance("no"),
    "change": Utterance("no, make it 700"),
    "command": Utterance("send 300 to mama"),
    "other": Utterance("purple elephants"),
    "balance": Utterance("what's my balance"),
    "history": Utterance("show my last transactions"),
    "help": Utterance("help"),
    "goodbye": Utterance("bye"),
    "pin_aloud": Utterance("my pin is 4321"),
    "pin": PinEntry("4321"),
    "tap_confirm": Tap("confirm", PID, 1),
    "tap_cancel": Tap("cancel", PID),
    "tool_confirm": ToolConfirm(PID, 1),
    "tool_cancel": ToolCancel(PID),
    "tool_propose": ToolPropose({"type": "send_phone", "amount": "300", "recipient": "Mama"}),
    "proposal_made": ProposalMade(VIEW),
    "proposal_refused": ProposalRefused("insufficient_balance", "", Decimal("100"), Decimal("100")),
    "committed": Committed(
        PID,
        1,
        "send_phone",
        Decimal("500"),
        Decimal("10"),
        "processing",
        True,
        Decimal("4490"),
        Decimal("4490"),
    ),
    "confirm_refused": ConfirmRefused("expired"),
    "balance_told": BalanceTold(Decimal("5000"), Decimal("4490")),
    "history_told": HistoryTold(()),
    "pin_result": PinResult("ok", 5),
    "spending": Utterance("how much did I spend this month"),
    "spending_told": SpendingTold(True, "this_month", Decimal("1500"), Decimal("15"), 3, Decimal("1000")),
    "payout_settled": PayoutSettled(
        PID,
        "send_phone",
        "completed",
        Decimal("500"),
        Decimal("5"),
        "QKX7A1B2C3",
        Decimal("4495"),
        phone="254733444555",
        recipient_name="Mama",
    ),
}
# Per phase, an answer that fits it better than the generic one.
SPECIAL: dict[tuple[str, str], Event] = {
    ("choosing", "other"): Utterance("Kamau"),
    ("choosing", "change"): Utterance("no, Kamau"),
}

# (phase, kind) -> (phase after, action types that must be among the actions)
EXPECTED: dict[tuple[str, str], tuple[str, set[type]]] = {
    **{
        (p, "payout_settled"): (p, {Speak, Show}) for p in ("idle", "filling", "choosing", "read_back", "pin")
    },
    ("idle", "tick"): ("idle", set()),
    ("idle", "balance"): ("fetching", {FetchBalance}),
    ("idle", "history"): ("fetching", {FetchHistory}),
    ("idle", "help"): ("idle", {Speak}),
    ("idle", "goodbye"): ("ended", {EndSession}),
    ("idle", "command"): ("proposing", {Propose}),
    ("idle", "tool_propose"): ("proposing", {Propose}),
    ("idle", "yes"): ("idle", {Speak}),
    ("idle", "tap_confirm"): ("idle", {Speak}),
    ("idle", "tool_confirm"): ("idle", {Speak}),
    ("idle", "no"): ("idle", {Speak}),
    ("idle", "change"): ("idle", {Speak}),
    ("idle", "other"): ("idle", {Speak}),
    ("idle", "pin_aloud"): ("idle", {Speak}),
    ("filling", "tick"): ("filling", set()),
    ("filling", "balance"): ("fetching", {FetchBalance}),
    ("filling", "history"): ("fetching", {FetchHistory}),
    ("filling", "help"): ("filling", {Speak}),
    ("filling", "goodbye"): ("ended", {EndSession}),
    ("filling", "pin_aloud"): ("filling", {Speak}),
    ("filling", "command"): ("proposing", {Propose}),
    ("filling", "tool_propose"): ("proposing", {Propose}),
    ("filling", "other"): ("filling", {Speak}),
    ("filling", "change"): ("proposing", {Propose}),
    ("filling", "yes"): ("filling", {Speak}),
    ("filling", "no"): ("idle", {Speak}),
    ("filling", "tap_cancel"): ("idle", {Speak}),
    ("filling", "tool_cancel"): ("idle", {Speak}),
    ("choosing", "tick"): ("choosing", set()),
    ("choosing", "balance"): ("fetching", {FetchBalance}),
    ("choosing", "history"): ("fetching", {FetchHistory}),
    ("choosing", "help"): ("choosing", {Speak}),
    ("choosing", "goodbye"): ("ended", {EndSession}),
    ("choosing", "pin_aloud"): ("choosing", {Speak}),
    ("choosing", "command"): ("proposing", {Propose}),
    ("choosing", "tool_propose"): ("proposing", {Propose}),
    ("choosing", "other"): ("proposing", {Propose}),
    ("choosing", "change"): ("proposing", {Propose}),
    ("choosing", "yes"): ("choosing", {Speak}),
    ("choosing", "no"): ("idle", {Speak}),
    ("choosing", "tap_cancel"): ("idle", {Speak}),
    ("choosing", "tool_cancel"): ("idle", {Speak}),
    ("read_back", "tick"): ("read_back", set()),
    ("read_back", "balance"): ("fetching", {FetchBalance}),
    ("read_back", "history"): ("fetching", {FetchHistory}),
    ("read_back", "help"): ("read_back", {Speak}),
    ("read_back", "goodbye"): ("ended", {Cancel, EndSession}),
    ("read_back", "yes"): ("confirming", {Confirm}),
    ("read_back", "tool_confirm"): ("confirming", {Confirm}),
    ("read_back", "tap_confirm"): ("confirming", {Confirm}),
    ("read_back", "no"): ("idle", {Cancel}),
    ("read_back", "tap_cancel"): ("idle", {Cancel}),
    ("read_back", "tool_cancel"): ("idle", {Cancel}),
    ("read_back", "change"): ("proposing", {Propose}),
    ("read_back", "command"): ("proposing", {Propose}),
    ("read_back", "tool_propose"): ("proposing", {Propose}),
    ("read_back", "other"): ("read_back", {Speak}),
    ("read_back", "pin"): ("read_back", {Speak}),
    ("read_back", "pin_aloud"): ("read_back", {Speak, Show}),
    ("pin", "tick"): ("pin", set()),
    ("pin", "balance"): ("fetching", {FetchBalance}),
    ("pin", "history"): ("fetching", {FetchHistory}),
    ("pin", "help"): ("pin", {Speak}),
    ("pin", "goodbye"): ("ended", {Cancel, EndSession}),
    ("pin", "pin"): ("checking_pin", {CheckPin}),
    ("pin", "yes"): ("pin", {Show}),
    ("pin", "tap_confirm"): ("pin", {Show}),
    ("pin", "tool_confirm"): ("pin", {Show}),
    ("pin", "no"): ("idle", {Cancel}),
    ("pin", "tap_cancel"): ("idle", {Cancel}),
    ("pin", "tool_cancel"): ("idle", {Cancel}),
    ("pin", "change"): ("proposing", {Propose}),
    ("pin", "command"): ("proposing", {Propose}),
    ("pin", "tool_propose"): ("proposing", {Propose}),
    ("pin", "other"): ("pin", {Speak}),
    ("pin", "pin_aloud"): ("pin", {Speak, Show}),
    ("proposing", "proposal_made"): ("read_back", {Show, Speak}),
    ("proposing", "proposal_refused"): ("idle", {Speak}),
    ("confirming", "committed"): ("idle", {Show, Speak}),
    ("confirming", "confirm_refused"): ("idle", {Cancel, Speak}),
    ("checking_pin", "pin_result"): ("confirming", {Confirm}),
    ("fetching", "balance_told"): ("idle", {Show, Speak}),
    ("fetching", "history_told"): ("idle", {Speak}),
    **{(p, "spending"): ("fetching", {FetchSpending}) for p in ("idle", "filling", "choosing", "read_back")},
    ("pin", "spending"): ("fetching", {FetchSpending}),
    ("fetching", "spending_told"): ("idle", {Speak}),
}


def test_the_expectations_cover_exactly_the_table() -> None:
    table = {(phase, kind) for phase, rules in TRANSITIONS.items() for kind in rules}
    assert table == set(EXPECTED)


def test_the_sample_events_are_of_the_kind_they_stand_for() -> None:
    for kind, event in EVENTS.items():
        assert kind_of(event, state_in("idle")) == kind, kind
    assert kind_of(AskBalance(), state_in("idle")) == "balance"


@pytest.mark.parametrize(("phase", "kind"), sorted(EXPECTED), ids=lambda v: str(v))
def test_pair(phase: str, kind: str) -> None:
    event = SPECIAL.get((phase, kind), EVENTS[kind])
    state = state_in(phase)
    result = step(state, event, NOW, WORLD)
    want_phase, want_actions = EXPECTED[(phase, kind)]
    assert result.state.phase == want_phase
    assert result.state.phase in TRANSITIONS[phase][kind][1]
    kinds = {type(a) for a in result.actions}
    assert want_actions <= kinds, [type(a).__name__ for a in result.actions]
    assert result.actions, "every allowed event answers with something"


ALL_KINDS = sorted(EVENTS)


@pytest.mark.parametrize("phase", sorted(TRANSITIONS))
def test_pairs_outside_the_table_are_ignored(phase: str) -> None:
    state = state_in(phase)
    for kind in ALL_KINDS:
        if kind in TRANSITIONS[phase]:
            continue
        result = step(state, EVENTS[kind], NOW, WORLD)
        assert result.state == state, (phase, kind)
        assert [type(a) for a in result.actions] == [Note], (phase, kind)
        assert result.actions[0] == Note("ignored")


def test_confirmations_carry_the_channel() -> None:
    by_voice = step(state_in("read_back"), EVENTS["yes"], NOW, WORLD).actions
    by_tool = step(state_in("read_back"), EVENTS["tool_confirm"], NOW, WORLD).actions
    by_tap = step(state_in("read_back"), EVENTS["tap_confirm"], NOW, WORLD).actions
    assert Confirm(PID, 1, True) in by_voice
    assert Confirm(PID, 1, True) in by_tool
    assert Confirm(PID, 1, False) in by_tap


def test_an_older_version_or_another_proposal_is_refused() -> None:
    state = state_in("read_back").model_copy(update={"proposal": live("700", version=2)})
    for event in (Tap("confirm", PID, 1), ToolConfirm(PID, 1), Tap("confirm", uuid.UUID(int=5), 2)):
        result = step(state, event, NOW, WORLD)
        assert result.state.phase == "read_back"
        assert not any(isinstance(a, Confirm) for a in result.actions)
        assert Note("rejected", rejected="stale_version") in result.actions
    ok = step(state, Tap("confirm", PID, 2), NOW, WORLD)
    assert Confirm(PID, 2, False) in ok.actions


def test_the_readme_shows_the_table_as_it_is() -> None:
    readme = (Path(__file__).resolve().parents[2] / "voice_server" / "dialogue" / "README.md").read_text()
    assert table_markdown() in readme
