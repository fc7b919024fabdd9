"""The single-flight cache behind the listing cache and the user endpoint pool: one load for
many getters, cancellation that strands nobody, expiry on one (fake) clock, a size bound."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import pytest

from bot.singleflight import SWEEP_EVERY, SingleFlightCache

WAIT = 2.0
"""Seconds any step of these tests may take before it counts as hung."""


class Source:
    """A load that counts its calls and can be held mid-load (``gate``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.failure: Exception | None = None

    async def load(self) -> str:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return f"value {self.calls}"


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (at most WAIT seconds)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)  # a yield to the loop, not a wait for time

    await asyncio.wait_for(poll(), WAIT)


async def test_concurrent_getters_share_one_load() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache: SingleFlightCache[str, str] = SingleFlightCache()
    getters = [asyncio.ensure_future(cache.get("k", source.load)) for _ in range(20)]
    await until(lambda: cache.metrics.hits == 19)  # one loads, nineteen wait for it
    source.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*getters), WAIT) == ["value 1"] * 20
    assert source.calls == 1 and len(cache) == 1
    assert await cache.get("k", source.load) == "value 1"


async def test_a_failed_load_reaches_every_getter_and_is_not_kept() -> None:
    source = Source()
    source.gate, source.failure = asyncio.Event(), OSError("unreachable")
    cache: SingleFlightCache[str, str] = SingleFlightCache()
    getters = [asyncio.ensure_future(cache.get("k", source.load)) for _ in range(3)]
    await until(lambda: cache.metrics.hits == 2)
    source.gate.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*getters, return_exceptions=True), WAIT)
    assert [type(o) for o in outcomes] == [OSError] * 3
    assert cache.metrics.failures == 1 and len(cache) == 0
    source.gate, source.failure = None, None
    assert await cache.get("k", source.load) == "value 2"


async def test_a_cancelled_first_getter_strands_neither_the_others_nor_the_entry() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache: SingleFlightCache[str, str] = SingleFlightCache()
    first = asyncio.ensure_future(cache.get("k", source.load))
    await asyncio.wait_for(source.started.wait(), WAIT)
    others = [asyncio.ensure_future(cache.get("k", source.load)) for _ in range(3)]
    await until(lambda: cache.metrics.hits == 3)
    first.cancel()
    await until(lambda: source.calls == 2)  # one of the others took the load over
    source.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*others), WAIT) == ["value 2"] * 3
    assert first.cancelled()
    assert cache.metrics.failures == 0 and len(cache) == 1


async def test_a_cancelled_lone_getter_leaves_no_pending_load_behind() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache: SingleFlightCache[str, str] = SingleFlightCache()
    lone = asyncio.ensure_future(cache.get("k", source.load))
    await asyncio.wait_for(source.started.wait(), WAIT)
    lone.cancel()
    await asyncio.gather(lone, return_exceptions=True)
    source.gate = None
    # a pending entry left behind would make this wait for ever
    assert await asyncio.wait_for(cache.get("k", source.load), WAIT) == "value 2"


async def test_a_cancelled_waiter_stops_only_its_own_wait() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache: SingleFlightCache[str, str] = SingleFlightCache()
    first = asyncio.ensure_future(cache.get("k", source.load))
    waiter = asyncio.ensure_future(cache.get("k", source.load))
    await until(lambda: cache.metrics.hits == 1)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    source.gate.set()
    assert await asyncio.wait_for(first, WAIT) == "value 1"
    assert waiter.cancelled() and source.calls == 1 and len(cache) == 1


async def test_ttl_counts_from_the_start_of_the_load_on_the_injected_clock() -> None:
    source, now = Source(), [100.0]
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=5.0, clock=lambda: now[0])
    assert await cache.get("k", source.load) == "value 1"
    now[0] = 104.9
    assert await cache.get("k", source.load) == "value 1"  # used, but ttl does not slide
    now[0] = 105.0
    assert await cache.get("k", source.load) == "value 2"
    cache.ttl = 1.0  # a reload: applies to what is kept too
    now[0] = 106.0
    assert await cache.get("k", source.load) == "value 3"


async def test_idle_slides_with_use_and_expire_drops_from_the_least_recent_end() -> None:
    now = [0.0]
    cache: SingleFlightCache[str, str] = SingleFlightCache(idle=60.0, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        await cache.get(key, Source().load)
    now[0] = 50.0
    await cache.get("a", Source().load)  # a hit: "a" is used again at 50 s
    now[0] = 60.0
    assert cache.expire(now[0]) == 2 and len(cache) == 1 and cache.metrics.expired == 2
    now[0] = 109.9
    assert await cache.get("a", Source().load) == "value 1"  # still the one from 0 s
    now[0] = 169.9
    assert cache.expire(now[0]) == 1 and len(cache) == 0


async def test_an_entry_goes_at_its_own_deadline() -> None:
    now = [0.0]
    cache: SingleFlightCache[str, tuple[str, float]] = SingleFlightCache(
        deadline=lambda value: value[1], clock=lambda: now[0]
    )
    loads = 0

    async def registration() -> tuple[str, float]:
        nonlocal loads
        loads += 1
        return f"binding {loads}", now[0] + 480.0  # 80 % of a 600 s registration

    assert (await cache.get("alice", registration))[0] == "binding 1"
    now[0] = 479.0
    assert (await cache.get("alice", registration))[0] == "binding 1"
    now[0] = 480.0
    assert (await cache.get("alice", registration))[0] == "binding 2"


async def test_at_most_size_entries_least_recently_used_go_first() -> None:
    source = Source()
    cache: SingleFlightCache[str, str] = SingleFlightCache(size=2)
    for key in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        await cache.get(key, source.load)
    assert len(cache) == 2 and source.calls == 3
    await cache.get("a", source.load)
    await cache.get("c", source.load)
    assert source.calls == 3
    assert await cache.get("b", source.load) == "value 4"


async def test_a_load_under_way_when_its_key_is_invalidated_is_not_kept() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache: SingleFlightCache[str, str] = SingleFlightCache()
    stale = asyncio.ensure_future(cache.get("k", source.load))
    await asyncio.wait_for(source.started.wait(), WAIT)
    cache.invalidate("k")
    source.gate.set()
    assert await asyncio.wait_for(stale, WAIT) == "value 1"  # its getter asked before
    assert len(cache) == 0
    assert await cache.get("k", source.load) == "value 2"


@pytest.mark.parametrize("ttl", [0.0, math.inf])
async def test_nothing_is_kept_that_is_expired_when_its_load_ends(ttl: float) -> None:
    source = Source()
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=ttl)
    await cache.get("k", source.load)
    await cache.get("k", source.load)
    assert source.calls == (2 if ttl == 0 else 1)


async def test_a_get_drops_the_expired_entries_of_other_keys() -> None:
    """Memory follows the keys in use: a get sweeps the expired entries (at most every
    SWEEP_EVERY seconds; the entry asked for is checked at every get)."""
    now = [0.0]
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=10.0, clock=lambda: now[0])
    await cache.get("a", Source().load)
    now[0] = 5.0
    b = Source()
    await cache.get("b", b.load)
    now[0] = 10.0
    assert await cache.get("b", b.load) == "value 1"  # a hit
    assert len(cache) == 1 and cache.metrics.expired == 1  # "a" went with that get
    now[0] = 15.0 - SWEEP_EVERY / 4
    await cache.get("c", Source().load)  # a sweep: "b" is not due yet
    now[0] = 15.0 + SWEEP_EVERY / 4  # "b" is due, and no sweep since: checked itself
    assert await cache.get("b", b.load) == "value 2" and len(cache) == 2
