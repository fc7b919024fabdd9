"""ConferenceStore.between, on SQLite and PostgreSQL: every organizer's conferences whose time
overlaps a window, whatever zone the window is given in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.conferencing.services import NewConference
from bot.conferencing.store import ConferenceStore

T = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConferenceStore]:
    store = ConferenceStore(database_url)
    await store.open()
    yield store
    await store.close()


async def test_every_organizers_conferences_overlapping_the_window(store: ConferenceStore) -> None:
    hour = timedelta(hours=1)
    for organizer, subject, start in [
        ("alice@example.test", "Early", T - 2 * hour),  # 7:00-8:00
        ("alice@example.test", "Sync", T),  # 9:00-10:00
        ("bob@example.test", "Review", T + 30 * timedelta(minutes=1)),  # 9:30-10:30
        ("carol@example.test", "Late", T + 3 * hour),  # 12:00-13:00
    ]:
        await store.schedule(organizer, NewConference(subject=subject, start=start, duration=hour))
    paris = ZoneInfo("Europe/Paris")  # 10:00 in Paris is 9:00 UTC
    found = await store.between(T.astimezone(paris), (T + hour).astimezone(paris))
    assert [c.subject for c in found] == ["Sync", "Review"]
    assert [c.subject for c in await store.between(T - hour, T - hour)] == ["Early"]
    assert await store.between(T + 2 * hour, T + 2 * hour + timedelta(minutes=59)) == []
