"""The listing cache in front of the conference store: fresh after the store's own writes,
one load for many concurrent readers, bounded, and never serving a load older than a write."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.conferencing.cache import ListingCache
from bot.conferencing.models import Conference
from bot.conferencing.store import ConferenceStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def conference(number: int, organizer: str = "alice@example.test") -> Conference:
    start = NOW + timedelta(days=number)
    return Conference(
        conference_id=f"C{number}",
        organizer=organizer,
        subject=f"Meeting {number}",
        uri=f"sip:{organizer};gruu;opaque=app:conf:focus:id:C{number}",
        access_level="everyone",
        start=start,
        end=start + timedelta(hours=1),
        expiry=start + timedelta(days=14),
    )


class Source:
    """A loader that counts its loads and can be held mid-load."""

    def __init__(self) -> None:
        self.data: dict[str, list[Conference]] = {}
        self.loads = 0
        self.gate: asyncio.Event | None = None
        self.failure: Exception | None = None

    async def load(self, organizer: str) -> list[Conference]:
        self.loads += 1
        snapshot = list(self.data.get(organizer, []))
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return snapshot


async def test_reuses_a_listing_for_ttl_then_loads_again() -> None:
    source, now = Source(), [0.0]
    cache = ListingCache(source.load, 5.0, clock=lambda: now[0])
    source.data["a"] = [conference(1)]
    assert [c.conference_id for c in await cache.get("a")] == ["C1"]
    source.data["a"] = [conference(1), conference(2)]
    now[0] = 4.9
    assert len(await cache.get("a")) == 1 and source.loads == 1
    now[0] = 5.0
    assert len(await cache.get("a")) == 2 and source.loads == 2


async def test_ttl_zero_reads_every_time() -> None:
    source = Source()
    cache = ListingCache(source.load, 0.0)
    for _ in range(3):
        await cache.get("a")
    assert source.loads == 3


async def test_concurrent_readers_share_one_load() -> None:
    source = Source()
    source.data["a"] = [conference(1)]
    source.gate = asyncio.Event()
    cache = ListingCache(source.load, 5.0)
    readers = [asyncio.ensure_future(cache.get("a")) for _ in range(50)]
    await asyncio.sleep(0)
    source.gate.set()
    results = await asyncio.gather(*readers)
    assert source.loads == 1
    assert all(r == [conference(1)] for r in results)


async def test_a_load_that_started_before_a_write_is_not_kept() -> None:
    source = Source()
    source.gate = asyncio.Event()
    cache = ListingCache(source.load, 60.0)
    stale = asyncio.ensure_future(cache.get("a"))
    await asyncio.sleep(0)
    source.data["a"] = [conference(1)]  # the write lands while the read is in flight
    cache.invalidate("a")
    source.gate.set()
    assert await stale == []  # that reader asked before the write
    assert await cache.get("a") == [conference(1)]  # the next one sees it
    assert source.loads == 2


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    source = Source()
    source.gate = asyncio.Event()
    source.failure = RuntimeError("database is locked")
    cache = ListingCache(source.load, 60.0)
    readers = [asyncio.ensure_future(cache.get("a")) for _ in range(3)]
    await asyncio.sleep(0)
    source.gate.set()
    for outcome in await asyncio.gather(*readers, return_exceptions=True):
        assert isinstance(outcome, RuntimeError)
    source.failure, source.gate = None, None
    assert await cache.get("a") == [] and source.loads == 2


async def test_remembers_at_most_size_organizers() -> None:
    source = Source()
    cache = ListingCache(source.load, 60.0, size=2)
    for organizer in ("a", "b", "a", "c"):  # "b" is the least recently used when "c" comes
        await cache.get(organizer)
    loads = source.loads
    await cache.get("a")
    await cache.get("c")
    assert source.loads == loads
    await cache.get("b")
    assert source.loads == loads + 1


@pytest.fixture
async def store(tmp_path: Path) -> ConferenceStore:
    store = ConferenceStore(f"sqlite+aiosqlite:///{tmp_path / 'conferences.db'}", cache_seconds=60)
    await store.open()
    yield store  # type: ignore[misc]
    await store.close()


async def test_store_writes_show_at_once_and_other_organizers_stay_out(
    store: ConferenceStore,
) -> None:
    assert await store.summaries("alice@example.test", NOW) == []
    await store.add(conference(2))
    await store.add(conference(1))
    await store.add(conference(3, organizer="bob@example.test"))
    listing = await store.summaries("alice@example.test", NOW)
    assert [c.conference_id for c in listing] == ["C1", "C2"]  # soonest first
    assert await store.details("alice@example.test", "C3") is None
    assert (await store.details("bob@example.test", "C3")) == conference(3, "bob@example.test")
    later = NOW + timedelta(days=15, hours=12)  # C1 expired at day 15, C2 expires at day 16
    assert [c.conference_id for c in await store.summaries("alice@example.test", later)] == ["C2"]
