"""A read-through cache for slow loads: one load per key however many ask at once (single
flight), entries that expire, and at most ``size`` of them (least recently used go first).

Used by the conference listings (bot.conferencing.cache) and the user endpoint pool
(bot.conferencing.endpoints). One clock, injected, decides every expiry.

An entry expires when any of these holds (each off by default):
- ``ttl`` seconds have passed since its load *started* (a listing is as old as its query);
- ``idle`` seconds have passed since it was last handed out (an endpoint nobody uses);
- the clock reached the entry's own deadline, ``deadline(value)`` (a registration running out).

Cancellation: the first getter runs the load in its own task, the others wait for it. If that
getter is cancelled, its load is abandoned and forgotten - never left pending - and the
waiters start again (one of them loads). A waiter that is cancelled stops only its own wait.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

SWEEP_EVERY = 1.0
"""Seconds between two sweeps of the expired entries by :meth:`SingleFlightCache.get`."""
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Abandoned(Exception):
    """The load a waiter waited for was cancelled with its getter: try again."""


@dataclass(slots=True)
class CacheMetrics:
    hits: int = 0
    """Gets answered by an entry or by a load another getter had started."""
    loads: int = 0
    """Loads started."""
    succeeded: int = 0
    """Loads that returned a value (kept, unless invalidated meanwhile or expired already)."""
    failures: int = 0
    """Loads that raised (cancellations are not failures)."""
    expired: int = 0
    """Entries dropped because they expired."""


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    started: float
    """When its load started (``ttl`` counts from here)."""
    used: float
    """When it was last handed out (``idle`` counts from here)."""


class SingleFlightCache(Generic[K, V]):
    def __init__(
        self,
        *,
        size: int = 10_000,
        ttl: float = math.inf,
        idle: float = math.inf,
        deadline: Callable[[V], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``ttl`` and ``idle`` may be changed later (a config reload): they apply to the
        entries already kept too."""
        self.size = size
        self.ttl = ttl
        self.idle = idle
        self._deadline = deadline
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._pending: dict[K, asyncio.Future[V]] = {}
        self.metrics = CacheMetrics()
        self._swept = -math.inf
        """When :meth:`get` last dropped the expired entries: at most every SWEEP_EVERY
        seconds, not at every hit (a cached listing is asked for at every 'my meetings')."""

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The value kept for ``key``, or the one a load already under way returns, or what
        ``load()`` returns (run here, in the caller's task). Raises what the load raised."""
        while True:
            now = self._clock()
            if now - self._swept >= SWEEP_EVERY or now < self._swept:
                self.expire(now)  # the others' (the entry asked for is checked itself)
            entry = self._entries.get(key)
            if entry is not None and self._expired(entry, now):
                del self._entries[key]
                self.metrics.expired += 1
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
                entry.used = now
                self.metrics.hits += 1
                return entry.value
            pending = self._pending.get(key)
            if pending is None:
                return await self._load(key, load, now)
            self.metrics.hits += 1
            try:
                return await asyncio.shield(pending)
            except _Abandoned:
                continue  # its getter was cancelled: look again, and load if nobody does

    async def _load(self, key: K, load: Callable[[], Awaitable[V]], started: float) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        self.metrics.loads += 1
        try:
            value = await load()
        except BaseException as exc:
            self._done_loading(key, future)
            if isinstance(exc, Exception):
                self.metrics.failures += 1
                future.set_exception(exc)
            else:  # cancelled (or the process is going down): the waiters start again
                future.set_exception(_Abandoned())
            future.exception()  # retrieved for the waiters; none may be left to read it
            raise
        self.metrics.succeeded += 1
        current = self._done_loading(key, future)
        future.set_result(value)
        entry = _Entry(value, started, started)
        # not when invalidated meanwhile: the load may predate the change that invalidated it
        if current and not self._expired(entry, self._clock()):
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def _expired(self, entry: _Entry[V], now: float) -> bool:
        return (
            now - entry.started >= self.ttl
            or now - entry.used >= self.idle
            or (self._deadline is not None and now >= self._deadline(entry.value))
        )

    def _done_loading(self, key: K, future: asyncio.Future[V]) -> bool:
        """Forget the load; whether it was still the current one."""
        if self._pending.get(key) is future:
            del self._pending[key]
            return True
        return False

    def expire(self, now: float) -> int:
        """Drop expired entries from the least recently used end (memory follows the keys in
        use, not every key ever seen); how many went."""
        self._swept = now
        gone = 0
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if not self._expired(oldest, now):
                break
            del self._entries[key]
            gone += 1
        self.metrics.expired += gone
        return gone

    def invalidate(self, key: K) -> None:
        """``key``'s value changed: the next get loads it again, and a load under way now is
        not kept (its getters still get what it returns)."""
        self._entries.pop(key, None)
        self._pending.pop(key, None)

    def clear(self) -> None:
        """Every value may have changed: as :meth:`invalidate` for every key."""
        self._entries.clear()
        self._pending.clear()
