"""The demo conferences stay in the future: seeded relative to now, again whenever a demo user
has none upcoming (theirs ended, or they cancelled them all)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.conferencing.models import Conference
from bot.conferencing.services import NewConference
from bot.conferencing.store import ConferenceStore

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
ALICE, BOB = "alice@example.test", "bob@example.test"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ConferenceStore]:
    store = ConferenceStore(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    await store.open()
    yield store
    await store.close()


def subjects(conferences: list[Conference]) -> list[str]:
    return [c.subject for c in conferences]


async def test_seeded_in_the_days_after_now(store: ConferenceStore) -> None:
    await store.seed_demo("example.test", NOW)
    alice = await store.summaries(ALICE, NOW)
    assert subjects(alice) == ["Weekly sync", "Quarterly review"]
    assert alice[0].start == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert subjects(await store.summaries(BOB, NOW)) == ["Design review"]


async def test_seeded_again_when_a_demo_user_has_none_upcoming(store: ConferenceStore) -> None:
    await store.seed_demo("example.test", NOW)
    later = NOW + timedelta(days=30)  # everything has ended
    await store.seed_demo("example.test", later)
    alice = await store.summaries(ALICE, later)
    assert subjects(alice) == ["Weekly sync", "Quarterly review"]
    assert all(c.start is not None and c.start > later for c in alice)

    for conference in alice:
        assert await store.cancel(ALICE, conference.conference_id)
    await store.seed_demo("example.test", later)
    assert subjects(await store.summaries(ALICE, later)) == ["Weekly sync", "Quarterly review"]


async def test_a_demo_user_with_something_upcoming_is_left_alone(store: ConferenceStore) -> None:
    await store.seed_demo("example.test", NOW)
    bob = await store.summaries(BOB, NOW)
    assert await store.cancel(BOB, bob[0].conference_id)
    start = NOW + timedelta(hours=2)
    await store.schedule(
        BOB, NewConference(subject="Mine", start=start, duration=timedelta(hours=1))
    )
    await store.seed_demo("example.test", NOW)
    assert subjects(await store.summaries(BOB, NOW)) == ["Mine"]
    assert len(await store.summaries(ALICE, NOW)) == 2  # and alice's are not doubled
