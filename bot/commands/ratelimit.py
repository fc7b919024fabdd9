"""Per-sender token buckets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` tokens per second, at most ``burst`` saved up, one token per command."""

    def __init__(self, rate: float, burst: int, *, max_senders: int = 100_000):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._max = max_senders

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        tokens = bucket.tokens + (now - bucket.updated) * self.rate
        bucket.updated = now
        if tokens > self.burst:  # (no min(): a builtin call for each command)
            tokens = self.burst
        if tokens < 1:
            bucket.tokens = tokens
            return False
        bucket.tokens = tokens - 1
        return True
