"""Generated conversations through the real driver and PostgreSQL (hypothesis): whatever mix of spoken yeses,
taps, the agent's tools, corrections, PINs right and wrong and PINs said aloud, on two sessions of the same
user (the person's, and one opened with a stolen token), a payment above the threshold or past the allowance
commits only in the turn of a right PIN typed in that session, and every payment without one stays inside
the allowance (spec: ledger.md, "Who may spend"). Two sessions make proposals whose read-back said "no PIN"
go stale while the other session uses up the allowance: only the ledger's gate at confirmation holds then."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
from hypothesis import HealthCheck, example, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from ledger.users import create_user
from tests.ledger.conftest import fresh_phone
from voice_server.conversation.driver import SessionDriver, TurnResult
from voice_server.dialogue.events import PinEntry, Tap, ToolConfirm, ToolPropose, UserEvent, Utterance
from voice_server.settings import Settings

PIN = "4321"
ACTS = st.sampled_from(
    [
        ("say", "send 100 to mama"),
        ("say", "send 900 to mama"),
        ("say", "send 900 to mama"),
        ("say", "yes"),
        ("tap",),
        ("say", "send 1500 to mama"),
        ("say", "no, make it 700"),
        ("say", "no, make it 2000"),
        ("say", "yes"),
        ("say", "seven three nine two"),
        ("say", "no"),
        ("tap",),
        ("tool_confirm",),
        ("tool_propose", "1000"),
        ("tool_propose", "300"),
        ("pin", PIN),
        ("pin", "0000"),
    ]
)


def _event(act: tuple[str, ...], live: dict[str, object] | None) -> UserEvent:
    pid = uuid.UUID(str(live["proposal_id"])) if live else uuid.uuid4()
    version = int(str(live["version"])) if live else 1
    if act[0] == "say":
        return Utterance(act[1])
    if act[0] == "tap":
        return Tap("confirm", pid, version)
    if act[0] == "tool_confirm":
        return ToolConfirm(pid, version)
    if act[0] == "tool_propose":
        return ToolPropose({"type": "send_phone", "amount": act[1], "recipient": "Mama"})
    return PinEntry(act[1])


@examples(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(acts=st.lists(st.tuples(st.sampled_from([0, 1]), ACTS), min_size=4, max_size=30))
# Always tried: a read-back that said "no PIN" goes stale while the other session spends the allowance.
@example(
    acts=[
        (0, ("say", "send 900 to mama")),
        *[(1, act) for _ in range(3) for act in (("say", "send 900 to mama"), ("say", "yes"))],
        (0, ("tap",)),
        (0, ("say", "yes")),
        (0, ("tool_confirm",)),
    ]
)
async def test_a_payment_needing_the_pin_commits_only_after_a_right_pin_in_that_session(
    pool: asyncpg.Pool, settings: Settings, acts: list[tuple[int, tuple[str, ...]]]
) -> None:
    user = (await create_user(pool, fresh_phone(), balance=Decimal("100000"), plan="pro", pin=PIN)).user_id
    await pool.execute(
        "INSERT INTO contacts (user_id, name, phone_number, nickname) VALUES ($1, 'Mary Wambui', "
        "'254733444555', 'Mama')",
        user,
    )
    driver = SessionDriver(pool, settings)
    sessions = [(await driver.start_session(user)).session_id for _ in range(2)]
    live: list[dict[str, object] | None] = [None, None]
    committed_by: dict[uuid.UUID, UserEvent] = {}
    for which, act in acts:
        event = _event(act, live[which])
        result: TurnResult = await driver.handle(sessions[which], user, event)
        live[which] = result.proposal
        if result.committed is not None:
            committed_by[uuid.UUID(str(result.committed["transaction_id"]))] = event
    rows = await pool.fetch(
        "SELECT id, amount, pin_verified FROM transactions WHERE user_id = $1 AND confirmed_at IS NOT NULL"
        " ORDER BY confirmed_at, id",
        user,
    )
    assert {r["id"] for r in rows} == set(committed_by)
    count, total = 0, Decimal(0)
    for r in rows:
        event = committed_by[r["id"]]
        if r["pin_verified"]:
            assert event == PinEntry(PIN), f"confirmed with the PIN in a turn of {event}"
            count, total = 0, Decimal(0)
            continue
        assert r["amount"] <= 1000, f"KES {r['amount']} without the PIN (by {event})"
        assert count < 5 and total + r["amount"] <= 3000, f"past the allowance without the PIN (by {event})"
        count, total = count + 1, total + r["amount"]
