"""Pacing on absolute deadlines: the n-th wait ends at start + n × interval, so lateness of one
wake-up is never carried into the next and nothing drifts over a long announcement."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    """Deadlines every ``interval`` seconds from ``start`` (default: ``clock()`` now)."""

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        start: float | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.start = clock() if start is None else start

    def deadline(self, n: int) -> float:
        """start + n × interval, computed afresh (not summed) so no rounding accumulates."""
        return self.start + n * self.interval

    def elapsed(self) -> float:
        """Seconds since start (negative before it)."""
        return self.clock() - self.start

    async def wait(self, n: int) -> float:
        """Return at the n-th deadline (at once if it has passed); how late we woke, in s."""
        deadline = self.deadline(n)
        delay = deadline - self.clock()
        if delay > 0:
            await self.sleep(delay)
        return self.clock() - deadline
