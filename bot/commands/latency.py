"""How long commands take to answer, as Prometheus histogram buckets (kept here, read by
/metrics at scrape time)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (s): a command answered from memory takes about a millisecond, one that reads
the store tens of milliseconds, one that asks a C3P focus up to its timeout (seconds)."""


@dataclass(slots=True)
class Histogram:
    """Observations counted per bucket (each in the first bucket whose bound holds it; the
    last, +Inf, holds the rest) and summed."""

    bounds: tuple[float, ...] = BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) for every bucket, +Inf last, as the
        Prometheus text format lists them."""
        running, buckets = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets
