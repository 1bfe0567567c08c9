"""A pace for requests to Daraja: at most N a second, one every 1/N second.

Daraja throttles with a spike arrest (429 / "spike arrest violation"), which enforces N a second as one
request every 1/N second: a burst is refused even when the second's total is under N. So the pace hands out
start slots 1/N apart rather than N tokens a second, and any one-second window holds at most N starts.
The arithmetic runs on an injected clock in integer nanoseconds (no rounding can let a window hold N + 1),
so it is tested by counting, not timing. Waiting is an asyncio sleep, never a blocking one, and callers take
it with no database connection in hand.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

NANOS = 1_000_000_000


class Pace:
    """Evenly spaced start slots, `per_second` a second; one per process, shared by its senders."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not per_second > 0:
            raise ValueError(f"a pace needs a positive rate, not {per_second!r}")
        self.interval = math.ceil(NANOS / per_second)  # rounded up: never closer than 1/N
        self.clock = clock
        self.sleep = sleep
        self.free_at = clock()  # the first slot not yet taken

    def reserve(self) -> float:
        """Take the next slot; returns the seconds until it starts (0 when the pace is idle).

        No await between reading and moving `free_at`: concurrent senders of one event loop each get a slot
        of their own. An idle pace banks nothing, so idleness never buys a burst."""
        now = self.clock()
        start = max(now, self.free_at)
        self.free_at = start + self.interval
        return (start - now) / NANOS

    def backlog(self) -> float:
        """Seconds until the last slot taken starts: claim more work only then, so work claimed (under a
        lease) does not queue for its turn."""
        return max(0, self.free_at - self.interval - self.clock()) / NANOS

    async def wait(self) -> None:
        """Take the next slot and sleep (asyncio only) until it starts."""
        delay = self.reserve()
        if delay > 0:
            await self.sleep(delay)

    async def caught_up(self) -> None:
        """Sleep (asyncio only) until every slot taken so far has started."""
        delay = self.backlog()
        if delay > 0:
            await self.sleep(delay)

    async def near(self, within: float) -> None:
        """Sleep (asyncio only) until the next slot not yet taken starts at most `within` seconds from now:
        work claimed under a lease waits for its slot well inside that lease, even when slots are further
        apart than the lease (a rate of 0.001 a second is a slot every 1,000 s)."""
        delay = (self.free_at - self.clock()) / NANOS - max(0.0, within)
        if delay > 0:
            await self.sleep(delay)
