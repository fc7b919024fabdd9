"""The contract of the `store` backend, on SQLite and on a real PostgreSQL alike: listings
soonest first and unexpired, one organizer's conferences out of every other's reach, schedule
and cancel, demo data once, times that come back as they went in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.conferencing.models import Conference
from bot.conferencing.services import NewConference
from bot.conferencing.store import ConferenceStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALICE, BOB = "alice@example.test", "bob@example.test"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConferenceStore]:
    store = ConferenceStore(database_url, cache_seconds=60)
    await store.open()
    yield store
    await store.close()


def new(subject: str, days: int, hours: int = 1) -> NewConference:
    return NewConference(
        subject=subject, start=NOW + timedelta(days=days), duration=timedelta(hours=hours)
    )


async def test_schedule_lists_soonest_first_and_drops_the_expired(store: ConferenceStore) -> None:
    later = await store.schedule(ALICE, new("Later", days=3))
    sooner = await store.schedule(ALICE, new("Sooner", days=1))
    assert [c.subject for c in await store.summaries(ALICE, NOW)] == ["Sooner", "Later"]
    assert sooner.expiry == sooner.end + timedelta(days=14)  # type: ignore[operator]
    after_sooner = sooner.expiry + timedelta(seconds=1)
    assert [c.conference_id for c in await store.summaries(ALICE, after_sooner)] == [
        later.conference_id
    ]


async def test_times_come_back_as_they_went_in(store: ConferenceStore) -> None:
    made = await store.schedule(ALICE, new("Sync", days=1))
    fresh = ConferenceStore(str(store.engine.url.render_as_string(hide_password=False)))
    try:
        back = await fresh.details(ALICE, made.conference_id)
    finally:
        await fresh.close()
    assert back == made and back is not None and back.start is not None
    assert back.start.utcoffset() == timedelta(0)


async def test_organizers_see_and_cancel_only_their_own(store: ConferenceStore) -> None:
    bobs = await store.schedule(BOB, new("Design review", days=2))
    assert await store.summaries(ALICE, NOW) == []
    assert await store.details(ALICE, bobs.conference_id) is None
    assert not await store.cancel(ALICE, bobs.conference_id)
    assert [c.subject for c in await store.summaries(BOB, NOW)] == ["Design review"]
    assert await store.cancel(BOB, bobs.conference_id)
    assert not await store.cancel(BOB, bobs.conference_id)
    assert await store.summaries(BOB, NOW) == []


async def test_writes_show_at_once_despite_the_listing_cache(store: ConferenceStore) -> None:
    assert await store.summaries(ALICE, NOW) == []  # cached for a minute
    await store.add(
        Conference(
            conference_id="EXTERNAL1",
            organizer=ALICE,
            subject="Added by hand",
            uri=f"sip:{ALICE};gruu;opaque=app:conf:focus:id:EXTERNAL1",
            access_level="invited",
            start=NOW + timedelta(days=1),
            end=NOW + timedelta(days=1, hours=1),
            expiry=NOW + timedelta(days=15),
        )
    )
    assert [c.subject for c in await store.summaries(ALICE, NOW)] == ["Added by hand"]


async def test_demo_data_goes_in_once(store: ConferenceStore) -> None:
    await store.seed_demo("example.test", NOW)
    await store.seed_demo("example.test", NOW)
    assert [c.subject for c in await store.summaries(ALICE, NOW)] == [
        "Weekly sync",
        "Quarterly review",
    ]
    assert [c.subject for c in await store.summaries(BOB, NOW)] == ["Design review"]
