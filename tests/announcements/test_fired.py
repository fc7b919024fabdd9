"""Each occurrence claimed once, on SQLite and on a real PostgreSQL: again after a restart,
and when two instances race for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.announcements.fired import FiredLog
from bot.conferencing.store import ConferenceStore

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConferenceStore]:
    store = ConferenceStore(database_url)
    await store.open()
    yield store
    await store.close()


async def fired(store: ConferenceStore) -> FiredLog:
    log = FiredLog(store.engine)
    await log.open()
    return log


async def test_an_occurrence_is_claimed_once_also_after_a_restart(store: ConferenceStore) -> None:
    log = await fired(store)
    assert await log.claim("start", "DEMO0001@2026-11-26T09:00:00Z", NOW)
    assert not await log.claim("start", "DEMO0001@2026-11-26T09:00:00Z", NOW)
    assert await log.claim("start", "DEMO0001@2026-11-27T09:00:00Z", NOW)
    assert await log.claim("ten-left", "DEMO0001@2026-11-26T09:00:00Z", NOW)
    url = store.engine.url.render_as_string(hide_password=False)
    restarted = ConferenceStore(url)
    try:
        again = await fired(restarted)
        assert not await again.claim("start", "DEMO0001@2026-11-26T09:00:00Z", NOW)
    finally:
        await restarted.close()


async def test_two_instances_racing_fire_it_once(store: ConferenceStore) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    other = ConferenceStore(url)
    try:
        one, two = await fired(store), await fired(other)
        wins = await asyncio.gather(
            *(log.claim("cron", f"sip:bob@example.test@{n}", NOW) for n in range(5)
              for log in (one, two))
        )  # fmt: skip
        assert sum(wins) == 5
    finally:
        await other.close()


async def test_old_records_are_forgotten(store: ConferenceStore) -> None:
    log = await fired(store)
    await log.claim("start", "a", NOW - timedelta(days=2))
    await log.claim("start", "b", NOW)
    assert await log.forget_before(NOW - timedelta(days=1)) == 1
    assert await log.claim("start", "a", NOW)
    assert not await log.claim("start", "b", NOW)
