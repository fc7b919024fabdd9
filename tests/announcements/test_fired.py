"""Each occurrence claimed once, on SQLite and on a real PostgreSQL: again after a restart,
and when two instances race for it - also two whole schedulers started at the same moment on
an empty PostgreSQL (the schema made by whichever comes first, bot.db.schema)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.announcements.fired import FiredLog
from bot.announcements.rules import Scheduler
from bot.announcements.service import Announcer
from bot.conferencing.models import Conference
from bot.conferencing.store import ConferenceStore
from bot.config.announcing import AnnouncementsConfig
from tests.conferencing.postgres import fresh_database

from .doubles import FakeCalls, FakeJoiner, FakeSounds

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


SYNC = Conference(
    conference_id="SYNC1",
    organizer="alice@example.test",
    subject="Weekly sync",
    uri="sip:alice@example.test;gruu;opaque=app:conf:focus:id:SYNC1",
    access_level="everyone",
    start=NOW,
    end=NOW + timedelta(minutes=30),
    expiry=NOW + timedelta(days=14),
)
RULES = AnnouncementsConfig(
    rules=[{"name": "opening", "when": "start", "text": "{subject} starts now", "target": "all"}]
)


async def start_scheduler(url: str) -> tuple[ConferenceStore, Scheduler, FakeCalls]:
    """One instance's store, fired log and scheduler, started as the runtime does."""
    store = ConferenceStore(url)
    await store.open()
    log = await fired(store)
    calls = FakeCalls()
    announcer = Announcer(FakeJoiner(calls), FakeSounds(), calls)
    return store, Scheduler(RULES, announcer=announcer, fired=log, conferences=store), calls


async def test_two_schedulers_started_together_on_an_empty_postgresql_fire_once(
    postgres: str,
) -> None:
    for attempt in range(10):
        url = await fresh_database(postgres)
        started = await asyncio.gather(start_scheduler(url), start_scheduler(url))
        try:
            await started[0][0].add(SYNC)
            await asyncio.gather(*(scheduler.tick(NOW + timedelta(seconds=1))
                                   for _, scheduler, _ in started))  # fmt: skip
            for _, scheduler, _ in started:
                await scheduler.settle()
            played = [line for *_, calls in started for line in calls.log if "played" in line]
            assert played == [f"played speech:Weekly sync starts now to {SYNC.uri}"], attempt
        finally:
            for store, scheduler, _ in started:
                await scheduler.close()
                await store.close()
