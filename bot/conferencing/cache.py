"""Per-organizer conference listings, read through from a slower source (the SQL store now,
a conference server later).

A listing is reused for ``ttl`` seconds. Writes made through the store invalidate the
organizer's listing at once, so only changes made by someone else (another process sharing
the database) can show up late, and by at most ``ttl``. Concurrent misses for one organizer
share one load, and a load that started before a write is never kept. The number of
organizers remembered is bounded (least recently used go). The mechanics are
bot.singleflight's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.conferencing.models import Conference
from bot.singleflight import SingleFlightCache

Loader = Callable[[str], Awaitable[list[Conference]]]


class ListingCache:
    def __init__(
        self,
        load: Loader,
        ttl: float,
        *,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._load = load
        self._cache: SingleFlightCache[str, list[Conference]] = SingleFlightCache(
            size=size, ttl=ttl, clock=clock
        )

    @property
    def ttl(self) -> float:
        """Seconds a listing is reused; a new value (a reload) applies to those kept too."""
        return self._cache.ttl

    @ttl.setter
    def ttl(self, seconds: float) -> None:
        self._cache.ttl = seconds

    @property
    def hits(self) -> int:
        return self._cache.metrics.hits

    @property
    def loads(self) -> int:
        return self._cache.metrics.loads

    def __len__(self) -> int:
        return len(self._cache)

    async def get(self, organizer: str) -> list[Conference]:
        return await self._cache.get(organizer, lambda: self._load(organizer))

    def invalidate(self, organizer: str) -> None:
        """The organizer's conferences changed: the next read loads them again."""
        self._cache.invalidate(organizer)

    def clear(self) -> None:
        """Anyone's conferences may have changed (invalidations were missed): load them all
        again."""
        self._cache.clear()
