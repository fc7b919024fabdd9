"""Pacing on absolute deadlines, on a fake clock: no drift over 10,000 packets."""

from __future__ import annotations

import random
from fractions import Fraction

from bot.media.pacing import Pacer


class FakeClock:
    """A clock that only moves when slept on, by exactly what was asked plus ``oversleep``."""

    def __init__(self, now: Fraction | float, oversleep: float = 0.0) -> None:
        self.now = now
        self.oversleep = oversleep
        self.wakes: list[Fraction | float] = []

    def __call__(self) -> Fraction | float:
        return self.now

    async def sleep(self, delay: Fraction | float) -> None:
        self.now += delay + random.uniform(0, self.oversleep) if self.oversleep else delay
        self.wakes.append(self.now)


async def test_the_nth_deadline_is_exactly_start_plus_n_intervals() -> None:
    start = Fraction(12345, 7)
    clock = FakeClock(start)
    pacer = Pacer(Fraction(20, 1000), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    for n in range(10_000):
        await pacer.wait(n)
        assert clock.now == start + n * Fraction(20, 1000)
    assert len(clock.wakes) == 9_999  # the first deadline is now: no sleep


async def test_late_wake_ups_are_not_carried_into_the_next_deadline() -> None:
    random.seed(17)
    clock = FakeClock(1000.0, oversleep=0.005)  # up to 5 ms late each time
    pacer = Pacer(0.02, clock=clock, sleep=clock.sleep)
    lateness = [await pacer.wait(n) for n in range(10_000)]
    assert max(lateness) <= 0.005 + 1e-9
    # 10,000 packets later we are on time again, not 10,000 × the lateness behind
    assert abs(clock.now - (1000.0 + 9_999 * 0.02)) <= 0.005 + 1e-9


async def test_a_deadline_in_the_past_returns_at_once() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(0.02, clock=clock, sleep=clock.sleep, start=-1.0)
    assert await pacer.wait(3) > 0.9
    assert clock.wakes == []
