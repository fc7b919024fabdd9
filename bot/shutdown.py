"""Graceful shutdown (SIGTERM/SIGINT): named steps run in order, all within one deadline.

The ``ending`` steps (calls, replies in flight, IM sessions, the registration) may wait on
peers; they share the deadline less a reserve, each step at most an even share of the time
left, so that a peer that never answers cannot keep the later steps from starting (every BYE
and the un-REGISTER go out); a step still running at the end of its share is cut (cancelled)
and named. The ``closing`` steps (listeners, the store) run whatever happened before, in the
time left, so the process always gets to exit - and exits 0: the stop it was asked for was
done, only cut short where a peer did not answer in time (the log says which step).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

log = structlog.get_logger("bot.shutdown")
CLOSE_RESERVE = 0.5
"""Seconds of the deadline kept for the closing steps (at most a quarter of it)."""
RETRY_AFTER = 5
"""Seconds a request refused while stopping is told to wait (RFC 3261 §20.33): about the
time a restart takes."""

Step = tuple[str, Callable[[], Awaitable[None]]]


async def run_steps(ending: Sequence[Step], closing: Sequence[Step], deadline: float) -> list[str]:
    """Run ``ending`` then ``closing`` within ``deadline`` seconds; the names of the steps
    cut."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    cut: list[str] = []
    for until, steps in ((end - min(CLOSE_RESERVE, deadline / 4), ending), (end, closing)):
        for index, (name, step) in enumerate(steps):
            now = loop.time()
            share = max(until - now, 0.0) / (len(steps) - index)
            try:
                async with asyncio.timeout_at(now + share):
                    await step()
            except TimeoutError:
                cut.append(name)
    if cut:
        log.warning("bot.shutdown_cut", deadline=deadline, steps=cut)
    return cut
