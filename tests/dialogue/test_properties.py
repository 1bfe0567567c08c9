"""Random conversations against the pure dialogue (hypothesis): nothing is ever confirmed that was not read
back in that exact version, and expiry always ends everything."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dialogue.helpers import NOW, WORLD, Bank
from voice_server.dialogue.events import (
    AskBalance,
    Event,
    PinEntry,
    Tap,
    Tick,
    ToolCancel,
    ToolConfirm,
    ToolPropose,
    Utterance,
)
from voice_server.dialogue.machine import step
from voice_server.dialogue.state import (
    Cancel,
    Confirm,
    DialogueState,
    Note,
    Show,
)

SAYINGS = [
    "send 500 to mama",
    "send 1500 to mama",
    "tuma elfu moja kwa Mama",
    "pay 350 to till 123456",
    "send 200 to John",
    "Kamau",
    "send money to mama",
    "300",
    "yes",
    "ndio",
    "no",
    "hapana",
    "no, make it 700",
    "make it 2000",
    "to John Doe instead",
    "purple elephants",
    "what's my balance",
    "help",
    "my pin is 4321",
    "deposit 2000 from equity",
]
# What the person (or the app, or the agent) may do; taps and tools name the live proposal, an old version,
# or a proposal that never existed.
ACTS = st.one_of(
    st.tuples(st.just("say"), st.sampled_from(SAYINGS)),
    st.tuples(
        st.just("say"),
        st.sampled_from(["pay 350 to till 123456", "no, pay bill 888880", "send 2000 to equity"]),
    ),
    st.tuples(
        st.just("tap"), st.sampled_from(["confirm", "cancel"]), st.sampled_from(["live", "old", "other"])
    ),
    st.tuples(st.just("tool_confirm"), st.sampled_from(["live", "old", "other"])),
    st.tuples(st.just("tool_cancel"), st.sampled_from(["live", "other"])),
    st.tuples(st.just("tool_propose"), st.sampled_from(["300", "1200", "-5", "abc"])),
    st.tuples(st.just("pin"), st.sampled_from(["4321", "0000"])),
    st.tuples(st.just("wait"), st.integers(min_value=0, max_value=200)),
    st.tuples(st.just("balance")),
)


def _event(act: tuple[object, ...], state: DialogueState) -> Event:
    p = state.proposal
    kind = act[0]

    def target(which: object) -> tuple[uuid.UUID, int]:
        if p is None or which == "other":
            return uuid.uuid4(), 1
        return p.proposal_id, p.version - 1 if which == "old" else p.version

    if kind == "say":
        return Utterance(str(act[1]))
    if kind == "tap":
        pid, version = target(act[2])
        return Tap("confirm" if act[1] == "confirm" else "cancel", pid, version)
    if kind == "tool_confirm":
        pid, version = target(act[1])
        return ToolConfirm(pid, version)
    if kind == "tool_cancel":
        return ToolCancel(target(act[1])[0])
    if kind == "tool_propose":
        return ToolPropose({"type": "send_phone", "amount": act[1], "recipient": "Mama"})
    if kind == "pin":
        return PinEntry(str(act[1]))
    if kind == "balance":
        return AskBalance()
    return Tick()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(acts=st.lists(ACTS, min_size=1, max_size=25), pin_set=st.booleans())
def test_only_the_exact_version_read_back_is_ever_confirmed(
    acts: list[tuple[object, ...]], pin_set: bool
) -> None:
    world = WORLD
    bank = Bank(pin_set=pin_set)
    state = DialogueState(session_expires_at=(NOW + timedelta(minutes=15)).timestamp())
    now = NOW
    shown: dict[uuid.UUID, int] = {}  # latest version read back, per proposal
    expiry: dict[uuid.UUID, float] = {}
    confirmed: set[uuid.UUID] = set()
    for act in acts:
        if act[0] == "wait":
            now += timedelta(seconds=int(str(act[1])))
        event = _event(act, state)
        before = state.proposal.proposal_id if state.proposal is not None else None
        turn_actions: list[object] = []
        queue = [step(state, event, now, world)]
        consenting = isinstance(event, ToolConfirm | Tap | PinEntry) or (
            isinstance(event, Utterance) and event.text in ("yes", "ndio")
        )
        while queue:
            result = queue.pop(0)
            state = result.state
            turn_actions += result.actions
            for action in result.actions:
                if isinstance(action, Show) and action.tool_name == "show_proposal":
                    pid = uuid.UUID(str(action.parameters["proposal_id"]))
                    shown[pid] = int(str(action.parameters["version"]))
                    expiry[pid] = (now + timedelta(seconds=120)).timestamp()
                if isinstance(action, Confirm):
                    assert consenting, f"confirmed without a yes, a tap or a PIN: {event}"
                    assert shown.get(action.proposal_id) == action.version, (
                        "confirmed a version never read back"
                    )
                    assert now.timestamp() < expiry[action.proposal_id], "confirmed after expiry"
                    assert action.proposal_id not in confirmed, "confirmed twice"
                    if isinstance(event, Tap):
                        assert action.voice_verified is False
                    elif not isinstance(event, PinEntry):
                        assert action.voice_verified is True
                    confirmed.add(action.proposal_id)
                answer = bank.answer(action, state)
                if answer is not None:
                    queue.append(step(state, answer, now, world))
        after = state.proposal.proposal_id if state.proposal is not None else None
        if before is not None and after != before:
            # A proposal is never forgotten while its hold is live: it was confirmed or cancelled.
            assert any(isinstance(a, Cancel | Confirm) and a.proposal_id == before for a in turn_actions), (
                f"proposal dropped without a cancel: {event}"
            )
        assert state.phase in ("idle", "filling", "choosing", "read_back", "pin", "ended")
        if state.phase in ("read_back", "pin"):
            assert state.proposal is not None and shown[state.proposal.proposal_id] == state.proposal.version

    # The way out: once the session's time is up, any event ends everything.
    live = state.proposal
    late = NOW + timedelta(minutes=15, seconds=1)
    end = step(state, Tick(), max(now, late), world)
    assert end.state.phase == "ended"
    assert end.state.proposal is None
    if live is not None and state.phase != "ended":
        assert Cancel(live.proposal_id, "session_expired") in end.actions
    after = step(end.state, Utterance("yes"), max(now, late), world)
    assert after.actions == (Note("ignored"),)
    assert after.state == end.state


@settings(max_examples=200, deadline=None)
@given(acts=st.lists(ACTS, min_size=1, max_size=15), wait=st.integers(min_value=120, max_value=800))
def test_an_unanswered_proposal_always_expires(acts: list[tuple[object, ...]], wait: int) -> None:
    bank = Bank()
    state = DialogueState(session_expires_at=(NOW + timedelta(hours=1)).timestamp())
    for act in acts:
        event = _event(act, state)
        queue = [step(state, event, NOW, WORLD)]
        while queue:
            result = queue.pop(0)
            state = result.state
            for action in result.actions:
                answer = bank.answer(action, state)
                if answer is not None:
                    queue.append(step(state, answer, NOW, WORLD))
    live = state.proposal
    result = step(state, Tick(), NOW + timedelta(seconds=wait), WORLD)
    assert result.state.proposal is None
    assert result.state.phase in ("idle", "filling", "choosing", "ended")
    if live is not None and state.phase != "ended":
        assert Cancel(live.proposal_id, "expired") in result.actions
