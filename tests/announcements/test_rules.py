"""Automatic announcements on a fake clock: each occurrence once at its time, not again after a
restart (a new scheduler on the same SQLite file), late only within grace, cron in its own time
zone across a DST change, targets, join, and a reload that replaces the rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.announcements.fired import FiredLog
from bot.announcements.rules import POLL, Scheduler
from bot.announcements.service import Announcer
from bot.announcements.wiring import build_announcements
from bot.conferencing.models import Conference
from bot.conferencing.store import ConferenceStore
from bot.config.announcing import AnnouncementsConfig

from .doubles import FakeCalls, FakeJoiner, FakeSounds, Tone

T = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
"""When the Weekly sync starts; it lasts 30 minutes."""
SECOND = timedelta(seconds=1)


def conference(cid: str, organizer: str, subject: str, start: datetime) -> Conference:
    return Conference(
        conference_id=cid,
        organizer=organizer,
        subject=subject,
        uri=f"sip:{organizer};gruu;opaque=app:conf:focus:id:{cid}",
        access_level="everyone",
        start=start,
        end=start + timedelta(minutes=30),
        expiry=start + timedelta(days=14),
    )


SYNC = conference("SYNC1", "alice@example.test", "Weekly sync", T)
DESIGN = conference("DESIGN1", "bob@example.test", "Design review", T)


def settings(*rules: dict[str, Any], grace: float = 300) -> AnnouncementsConfig:
    return AnnouncementsConfig(rules=rules, grace=grace)


START = {"name": "opening", "when": "start", "text": "{subject} starts now", "target": "all"}


@dataclass
class Bot:
    """One run of the bot: its store, its calls and its scheduler."""

    store: ConferenceStore
    calls: FakeCalls
    scheduler: Scheduler

    def heard(self) -> list[str]:
        return [line.rpartition(" to ")[0] for line in self.calls.log if line.startswith("played")]

    async def tick(self, now: datetime) -> list[str]:
        """What was played because of this tick."""
        before = len(self.heard())
        await self.scheduler.tick(now)
        await self.scheduler.settle()
        return self.heard()[before:]


async def start_bot(path: Path, rules: AnnouncementsConfig, *, seed: bool = True) -> Bot:
    store = ConferenceStore(f"sqlite+aiosqlite:///{path / 'sipbot.db'}")
    await store.open()
    if seed:
        await store.add(SYNC)
        await store.add(DESIGN)
    fired = FiredLog(store.engine)
    await fired.open()
    calls = FakeCalls()
    announcer = Announcer(FakeJoiner(calls), FakeSounds(), calls)
    return Bot(store, calls, Scheduler(rules, announcer=announcer, fired=fired, conferences=store))


@pytest.fixture
async def bots() -> AsyncIterator[list[Bot]]:
    """The bots a test starts; stopped after it."""
    started: list[Bot] = []
    yield started
    for bot in started:
        await bot.scheduler.close()
        await bot.store.close()


async def test_a_start_rule_fires_once_at_its_time(tmp_path: Path, bots: list[Bot]) -> None:
    bots.append(bot := await start_bot(tmp_path, settings(START)))
    assert await bot.tick(T - 5 * SECOND) == []
    assert sorted(await bot.tick(T + SECOND)) == [
        "played speech:Design review starts now",
        "played speech:Weekly sync starts now",
    ]
    assert f"left {SYNC.uri}" in bot.calls.log  # it left after playing
    assert await bot.tick(T + 5 * SECOND) == []
    assert await bot.tick(T + 12 * SECOND) == []


async def test_not_again_after_a_restart(tmp_path: Path, bots: list[Bot]) -> None:
    bots.append(first := await start_bot(tmp_path, settings(START)))
    assert len(await first.tick(T + SECOND)) == 2
    await first.scheduler.close()
    await first.store.close()
    bots.remove(first)
    bots.append(second := await start_bot(tmp_path, settings(START), seed=False))
    with capture_logs() as logs:
        assert await second.tick(T + 30 * SECOND) == []  # within grace, but it fired already
    claims = [(e["event"], e["key"]) for e in logs if e["event"].startswith("announcement.rule")]
    assert sorted(claims) == [
        ("announcement.rule.already_claimed", "DESIGN1@2026-11-26T09:00:00Z"),
        ("announcement.rule.already_claimed", "SYNC1@2026-11-26T09:00:00Z"),
    ]


async def test_late_only_within_grace(tmp_path: Path, bots: list[Bot]) -> None:
    (tmp_path / "down").mkdir()
    bots.append(late := await start_bot(tmp_path, settings(START, grace=300)))
    assert len(await late.tick(T + 299 * SECOND)) == 2  # down at 9:00, back within grace
    bots.append(too_late := await start_bot(tmp_path / "down", settings(START, grace=300)))
    assert await too_late.tick(T + 301 * SECOND) == []
    assert await too_late.tick(T + 310 * SECOND) == []


async def test_before_end_fills_minutes_and_targets_one_organizer(
    tmp_path: Path, bots: list[Bot]
) -> None:
    rule = {
        "name": "ten-left",
        "when": "before_end",
        "minutes": 10,
        "text": "{subject}: {minutes} minutes left",
        "target": "alice@example.test",
    }
    bots.append(bot := await start_bot(tmp_path, settings(rule)))
    assert await bot.tick(T + timedelta(minutes=19, seconds=59)) == []
    assert await bot.tick(T + timedelta(minutes=20)) == [
        "played speech:Weekly sync: 10 minutes left"
    ]


async def test_a_rule_for_one_conference_id_plays_its_clip(tmp_path: Path, bots: list[Bot]) -> None:
    rule = {"name": "chime", "when": "start", "clip": "chime", "target": "DESIGN1"}
    bots.append(bot := await start_bot(tmp_path, settings(rule)))
    assert await bot.tick(T) == ["played clip:chime"]
    assert bot.calls.log[0] == f"joined {DESIGN.uri}"


async def test_cron_in_its_time_zone_across_the_end_of_summer_time(
    tmp_path: Path, bots: list[Bot]
) -> None:
    # Paris leaves summer time on Sunday 25 October 2026: 09:00 there is 07:00 UTC before,
    # 08:00 UTC from that day on
    rule = {
        "name": "morning",
        "when": "cron",
        "cron": "0 9 * * *",
        "time_zone": "Europe/Paris",
        "text": "Good morning",
        "target": "sip:bob@example.test",
    }
    bots.append(bot := await start_bot(tmp_path, settings(rule), seed=False))
    saturday = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)
    assert await bot.tick(saturday - SECOND) == []
    assert await bot.tick(saturday) == ["played speech:Good morning"]
    assert bot.calls.log[0] == "called sip:bob@example.test"
    sunday = saturday + timedelta(days=1)
    assert await bot.tick(sunday) == []  # 08:00 in Paris now
    assert await bot.tick(sunday + timedelta(hours=1) - SECOND) == []
    assert await bot.tick(sunday + timedelta(hours=1)) == ["played speech:Good morning"]
    assert await bot.tick(sunday + timedelta(hours=1, seconds=5)) == []


async def test_cron_into_conferences_in_progress(tmp_path: Path, bots: list[Bot]) -> None:
    rule = {"name": "q", "when": "cron", "cron": "*/10 * * * *", "text": "{minutes} left",
            "target": "SYNC1"}  # fmt: skip
    bots.append(bot := await start_bot(tmp_path, settings(rule)))
    assert await bot.tick(T - timedelta(minutes=10)) == []  # not started yet
    assert await bot.tick(T + timedelta(minutes=10)) == ["played speech:20 left"]
    assert await bot.tick(T + timedelta(minutes=30)) == []  # over


async def test_a_reload_replaces_the_rules(tmp_path: Path, bots: list[Bot]) -> None:
    bots.append(bot := await start_bot(tmp_path, settings(START)))
    assert await bot.tick(T - 5 * SECOND) == []
    new = {"name": "hello", "when": "start", "text": "Hello {subject}", "target": "SYNC1"}
    bot.scheduler.reconfigure(settings(new))
    assert await bot.tick(T + SECOND) == ["played speech:Hello Weekly sync"]
    bot.scheduler.reconfigure(settings({**new, "enabled": False}))
    assert await bot.tick(T + timedelta(minutes=30)) == []


async def test_join_rules_fire_once_per_participant(tmp_path: Path, bots: list[Bot]) -> None:
    rule = {"name": "welcome", "when": "join", "text": "Welcome to {subject}", "target": "all"}
    bots.append(bot := await start_bot(tmp_path, settings(rule)))
    bot.scheduler._clock = lambda: T + timedelta(minutes=3)
    joined = T + timedelta(minutes=2)
    await bot.scheduler.joined(SYNC, "sip:carol@example.test", joined)
    await bot.scheduler.joined(SYNC, "sip:carol@example.test", joined)  # the same, seen twice
    await bot.scheduler.joined(SYNC, "sip:dave@example.test", joined)
    await bot.scheduler.joined(SYNC, "sip:erin@example.test", T - timedelta(minutes=10))  # old
    await bot.scheduler.settle()
    assert bot.heard() == ["played speech:Welcome to Weekly sync"] * 2
    assert await bot.tick(T + timedelta(minutes=3)) == []  # not a timed rule


async def test_run_wakes_at_the_time_itself(tmp_path: Path, bots: list[Bot]) -> None:
    bots.append(bot := await start_bot(tmp_path, settings(START)))
    now = [T - timedelta(seconds=25)]
    woke: list[datetime] = []

    class Stop(Exception):
        pass

    async def sleep(seconds: float) -> None:
        assert 0 <= seconds <= POLL
        if now[0] >= T:
            raise Stop  # the tick at T is done
        now[0] += timedelta(seconds=seconds)
        woke.append(now[0])

    bot.scheduler._clock = lambda: now[0]
    bot.scheduler._sleep = sleep
    with pytest.raises(Stop):
        await bot.scheduler.run()
    await bot.scheduler.settle()
    assert woke == [T - timedelta(seconds=15), T - timedelta(seconds=5), T]  # not T + 5
    assert len(bot.heard()) == 2


async def test_built_for_the_runtime_on_the_store(tmp_path: Path) -> None:
    store = ConferenceStore(f"sqlite+aiosqlite:///{tmp_path / 'sipbot.db'}")
    await store.open()
    calls = FakeCalls()
    built = await build_announcements(
        joiner=FakeJoiner(calls),
        sounds=FakeSounds(),
        calls=calls,
        store=store,
        engine=store.engine,
        settings=settings(START),
    )
    try:
        await store.add(SYNC)
        await built.scheduler.tick(T)
        await built.scheduler.settle()
        assert calls.log[1] == f"played speech:Weekly sync starts now to {SYNC.uri}"
        assert (await built.announcer.announce(SYNC, Tone("x", 1.0))).where == "'Weekly sync'"
    finally:
        await built.scheduler.close()
        await store.close()


def test_only_cron_rules_may_name_a_sip_uri() -> None:
    with pytest.raises(ValueError, match="only a cron rule may name a SIP URI as its target"):
        settings({**START, "target": "sip:bob@example.test"})
