"""Two instances sharing one real PostgreSQL, listings cached for 5 s: a conference scheduled or
cancelled through one is listed so through the other within a second (LISTEN/NOTIFY,
bot.db.notify), also after the listening connection was killed; while an instance is not
listening it serves listings from the database, uncached."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.conferencing.services import NewConference
from bot.conferencing.store import ConferenceStore
from bot.db.notify import Invalidations
from tests.conferencing.postgres import fresh_database, terminate

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ALICE = "alice@example.test"
SYNC = NewConference(subject="Sync", start=NOW + timedelta(hours=1), duration=timedelta(minutes=30))


class Instance:
    """One instance's store, saying when a cached listing was dropped."""

    def __init__(self, url: str):
        self.store = ConferenceStore(url, cache_seconds=5)
        self.dropped: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        invalidate = self.store.listings.invalidate

        def spied(organizer: str) -> None:
            invalidate(organizer)
            self.dropped[organizer].set()

        self.store.listings.invalidate = spied  # type: ignore[method-assign]

    async def listed(self) -> list[str]:
        return [c.conference_id for c in await self.store.summaries(ALICE, NOW)]

    async def cached(self) -> list[str]:
        """Alice's listing, read twice: the second time from the cache."""
        loads = self.store.listings.loads
        first, second = await self.listed(), await self.listed()
        assert first == second and self.store.listings.loads == loads + 1
        self.dropped[ALICE].clear()
        return first

    async def heard(self) -> None:
        """Alice's listing was dropped on a notification from the other instance."""
        await asyncio.wait_for(self.dropped[ALICE].wait(), 1.0)


@pytest.fixture
async def instances(postgres: str) -> AsyncIterator[tuple[Instance, Instance]]:
    url = await fresh_database(postgres)
    one, two = Instance(url), Instance(url)
    await asyncio.gather(one.store.open(), two.store.open())
    yield one, two
    for instance in (one, two):
        await instance.store.close()


async def test_a_change_through_one_instance_shows_through_the_other_within_a_second(
    instances: tuple[Instance, Instance],
) -> None:
    one, two = instances
    loop = asyncio.get_running_loop()
    assert await two.cached() == []
    scheduled = loop.time()
    conference = await one.store.schedule(ALICE, SYNC)
    await two.heard()
    assert await two.listed() == [conference.conference_id]
    assert loop.time() - scheduled < 1.0
    assert await one.cached() == [conference.conference_id]
    assert await two.store.cancel(ALICE, conference.conference_id)
    await one.heard()
    assert await one.listed() == []


async def test_the_listener_reconnects_after_its_connection_is_killed(
    postgres: str, instances: tuple[Instance, Instance]
) -> None:
    one, two = instances
    listener = two.store.invalidations
    assert listener is not None
    killed = await listener.until_listening()
    await terminate(postgres, killed)
    again = await asyncio.wait_for(listener.until_listening(other_than=killed), 5)
    assert again != killed
    assert await two.cached() == []  # the cache is on again
    conference = await one.store.schedule(ALICE, SYNC)
    await two.heard()
    assert await two.listed() == [conference.conference_id]


async def test_while_not_listening_listings_come_from_the_database(
    instances: tuple[Instance, Instance],
) -> None:
    one, two = instances
    assert two.store.invalidations is not None
    await two.store.invalidations.close()
    unreachable = one.store.engine.url.set(drivername="postgresql", database="no_such_db")
    two.store.invalidations = Invalidations(
        unreachable.render_as_string(hide_password=False),
        changed=two.store.listings.invalidate,
        all_changed=two.store.listings.clear,
    )
    await two.store.invalidations.start()
    assert not two.store.invalidations.listening
    assert await two.listed() == []
    conference = await one.store.schedule(ALICE, SYNC)  # not heard by two: it is not listening
    assert await two.listed() == [conference.conference_id]  # but not cached either
    assert not two.dropped[ALICE].is_set()
