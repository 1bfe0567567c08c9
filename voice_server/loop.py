"""How the commands run their event loop.

uvloop where it is installed (Linux and macOS): the same asyncio API with the loop and its transports in C,
which the server's turns spend much of their time in (a turn is several round trips to PostgreSQL and one
to the client). And a garbage collector set for a server that holds thousands of open sessions.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Objects allocated between two collections of the youngest generation (CPython's default is 700). A turn
# allocates a few thousand short-lived objects; with the default, a collection every few turns catches the
# turns in flight and promotes their objects, and every few thousand promotions force a full collection,
# which walks every object of every open session: 150-450 ms with 5,000 sessions, during which no turn
# moves. Collecting the young generation less often promotes far fewer of them.
YOUNG_THRESHOLD = 50_000


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop has no Windows build
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def settle_garbage_collector() -> None:
    """Once a long-running command has started: what start-up built (modules, the app, its routes, the
    parser's tables) lives as long as the process, so it is frozen out of every later collection, and the
    young generation is collected less often (see YOUNG_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


async def until_signal() -> None:
    """Return on SIGINT or SIGTERM (Ctrl-C, or a process manager stopping the command), so a long-running
    command can finish its work and close what it holds instead of being killed outright. The handlers stay:
    a second signal during that finishing does not kill it either."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
