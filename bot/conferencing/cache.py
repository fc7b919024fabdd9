"""Per-organizer conference listings, read through from a slower source (the SQL store now,
a conference server later).

A listing is reused for ``ttl`` seconds. Writes made through the store invalidate the
organizer's listing at once, so only changes made by someone else (another process sharing
the database) can show up late, and by at most ``ttl``. Concurrent misses for one organizer
share one load. The number of organizers remembered is bounded (least recently used go).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from bot.conferencing.models import Conference

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
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, list[Conference]]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[list[Conference]]] = {}
        self.hits = 0
        self.loads = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, organizer: str) -> list[Conference]:
        now = self._clock()
        self._trim(now)
        entry = self._entries.get(organizer)
        if entry is not None and now - entry[0] < self.ttl:
            self._entries.move_to_end(organizer)
            self.hits += 1
            return entry[1]
        pending = self._loading.get(organizer)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        return await self._fetch(organizer)

    async def _fetch(self, organizer: str) -> list[Conference]:
        future: asyncio.Future[list[Conference]] = asyncio.get_running_loop().create_future()
        self._loading[organizer] = future
        self.loads += 1
        started = self._clock()
        try:
            listing = await self._load(organizer)
        except BaseException as exc:
            self._done_loading(organizer, future)
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # waiters get it; nothing to report as never retrieved
            raise
        current = self._done_loading(organizer, future)
        future.set_result(listing)
        if current and self.ttl > 0:  # not when invalidated meanwhile: it may predate the write
            self._entries[organizer] = (started, listing)
            self._entries.move_to_end(organizer)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return listing

    def _trim(self, now: float) -> None:
        """Forget stale listings from the least recently used end: memory follows the users
        active within ``ttl``, not every user ever seen."""
        while self._entries:
            fetched, _ = next(iter(self._entries.values()))
            if now - fetched < self.ttl:
                break
            self._entries.popitem(last=False)

    def _done_loading(self, organizer: str, future: asyncio.Future[list[Conference]]) -> bool:
        """Forget the load; whether it was still the current one."""
        if self._loading.get(organizer) is future:
            del self._loading[organizer]
            return True
        return False

    def invalidate(self, organizer: str) -> None:
        """The organizer's conferences changed: the next read loads them again."""
        self._entries.pop(organizer, None)
        self._loading.pop(organizer, None)
