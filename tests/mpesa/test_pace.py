"""The pace of requests to Daraja, on an injected clock: counted, never timed. Whatever the arrivals, no
one-second window holds more starts than the cap, no start comes before its request, and no request waits
longer than the slots ahead of it require."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.pace import NANOS, Pace


class Clock:
    """A clock the test moves by hand (integer nanoseconds, as `time.monotonic_ns`)."""

    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def starts(pace: Pace, clock: Clock, arrivals: list[int]) -> list[int]:
    """The start granted to each request, arriving at these (sorted) times."""
    granted = []
    for at in arrivals:
        clock.now = at
        granted.append(at + round(pace.reserve() * NANOS))
    return granted


def most_in_one_second(granted: list[int]) -> int:
    """The most starts any window [t, t + 1 s) holds (the busiest window opens at a start)."""
    return max(sum(1 for s in granted if first <= s < first + NANOS) for first in granted)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.one_of(st.integers(1, 120).map(float), st.floats(0.5, 120.0)),
    gaps=st.lists(st.integers(0, NANOS // 4), min_size=1, max_size=300),
)
def test_no_one_second_window_holds_more_than_the_cap(rate: float, gaps: list[int]) -> None:
    clock = Clock(7 * NANOS)
    pace = Pace(rate, clock=clock)
    arrivals = [clock.now + sum(gaps[: i + 1]) for i in range(len(gaps))]
    granted = starts(pace, clock, arrivals)
    assert most_in_one_second(granted) <= math.ceil(rate)  # the cap itself when it is a whole number
    assert all(s >= a for s, a in zip(granted, arrivals, strict=True))  # never before the request
    assert granted == sorted(granted)  # first come, first served


def test_a_burst_is_spread_one_interval_apart_and_no_further() -> None:
    clock = Clock()
    pace = Pace(50, clock=clock)
    granted = starts(pace, clock, [0] * 120)
    assert granted == [i * NANOS // 50 for i in range(120)]
    assert most_in_one_second(granted) == 50


def test_idleness_buys_no_burst() -> None:
    clock = Clock()
    pace = Pace(10, clock=clock)
    starts(pace, clock, [0, 0, 0])
    later = 3600 * NANOS
    assert starts(pace, clock, [later] * 3) == [later, later + NANOS // 10, later + 2 * NANOS // 10]


def test_a_rate_that_does_not_divide_a_second_rounds_the_interval_up() -> None:
    clock = Clock()
    pace = Pace(3, clock=clock)
    granted = starts(pace, clock, [0] * 4)
    assert granted == [0, 333_333_334, 666_666_668, 1_000_000_002]
    assert most_in_one_second(granted) == 3


def test_backlog_is_the_wait_for_the_last_slot_taken() -> None:
    clock = Clock()
    pace = Pace(20, clock=clock)
    assert pace.backlog() == 0
    starts(pace, clock, [0] * 5)
    assert pace.backlog() == pytest.approx(4 / 20)
    clock.now = NANOS // 10
    assert pace.backlog() == pytest.approx(2 / 20)
    clock.now = NANOS
    assert pace.backlog() == 0


async def test_waiting_sleeps_through_the_injected_sleep_and_only_when_needed() -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    pace = Pace(4, clock=clock, sleep=sleep)
    await pace.caught_up()
    for _ in range(3):
        await pace.wait()
    await pace.caught_up()
    assert slept == [0.25, 0.5, 0.5]  # the first slot is now; caught up when the third starts


@pytest.mark.parametrize("rate", [0, -1, float("nan")])
def test_a_rate_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive rate"):
        Pace(rate)
