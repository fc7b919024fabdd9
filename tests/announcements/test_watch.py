"""The roster watcher of 'join' rules: the scheduler (fake clock, SQLite store, fake calls)
subscribes to the conferences in progress that a join rule aims at, announces each participant
who joins once - not again for the full state of a re-subscription or after a restart, never
the bot itself - and unsubscribes when the conference ends or a reload drops the rule. Once
with a scripted subscription, once over real sockets against SIPp as an RFC 4579 focus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.announcements.fired import FiredLog
from bot.announcements.rules import Scheduler
from bot.announcements.service import Announcer
from bot.announcements.watch import RETRY, OnChange, RosterWatcher, conference_subscriber
from bot.calls.router import DialogRouter
from bot.calls.subscription import SubscriptionFailed
from bot.conferencing.models import Conference
from bot.conferencing.roster import Roster
from bot.conferencing.store import ConferenceStore
from bot.config import Config
from bot.runtime import Runtime
from bot.sip.transaction import Peer
from bot.transport.endpoint import SipEndpoint
from tests.calls.join_bot import SCENARIOS, join_bot, join_config
from tests.peers.conftest import Process, free_port, listening, processes, start

from .doubles import FakeCalls, FakeJoiner, FakeSounds
from .test_rules import SYNC, T, settings

__all__ = ["processes"]  # the fixture, from tests/peers

BOT = "sip:bot@example.test"
WELCOME = {"name": "welcome", "when": "join", "text": "Welcome to {subject}", "target": "SYNC1"}
SECOND = timedelta(seconds=1)
WAIT = 10.0


def info(version: int, *users: str, state: str = "full") -> bytes:
    """A conference-info document (RFC 4575 §5) with ``users`` connected."""
    body = "".join(
        f'<user entity="{u}" state="full"><endpoint entity="{u};ep"><status>connected</status>'
        "</endpoint></user>"
        for u in users
    )
    return (
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        f'entity="{SYNC.uri}" state="{state}" version="{version}">'
        f'<users state="{state}">{body}</users></conference-info>'
    ).encode()


class Scripted:
    """A subscription the test feeds bodies into (its own roster, as a new one has)."""

    def __init__(self, uri: str, on_change: OnChange, refuse: bool):
        self.uri = uri
        self.on_change = on_change
        self.refuse = refuse
        self.roster = Roster()
        self.ended = asyncio.Event()
        self.started = False
        self.closed = False

    async def start(self) -> None:
        if self.refuse:
            raise SubscriptionFailed(f"The conference {self.uri} would not send me its roster.")
        self.started = True

    async def close(self) -> None:
        self.closed = True
        self.ended.set()

    def notify(self, body: bytes) -> None:
        self.on_change(self.roster.apply(body), self.roster)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Watching:
    """One run of the bot with a roster watcher: store, fake calls, scheduler."""

    def __init__(self, store: ConferenceStore, scheduler: Scheduler, calls: FakeCalls):
        self.store = store
        self.scheduler = scheduler
        self.calls = calls
        self.subscriptions: list[Scripted] = []
        self.refuse = False

    def subscribe(self, uri: str, on_change: OnChange) -> Scripted:
        subscription = Scripted(uri, on_change, self.refuse)
        self.subscriptions.append(subscription)
        return subscription

    @property
    def watcher(self) -> RosterWatcher:
        assert isinstance(self.scheduler.watcher, RosterWatcher)
        return self.scheduler.watcher

    async def tick(self, now: datetime) -> None:
        self.clock.now = now
        await self.scheduler.tick(now)
        await self.settled()

    async def settled(self) -> None:
        """Every subscription started, every reported join claimed and played."""
        await asyncio.sleep(0)  # the subscriptions' start tasks run
        await self.watcher.settle()
        await self.scheduler.settle()

    @property
    def welcomed(self) -> int:
        return sum(line.startswith("played speech:Welcome") for line in self.calls.log)

    clock: Clock


async def run(path: Path, rules: Any, *, seed: bool = True) -> Watching:
    store = ConferenceStore(f"sqlite+aiosqlite:///{path / 'sipbot.db'}")
    await store.open()
    if seed:
        await store.add(SYNC)
    fired = FiredLog(store.engine)
    await fired.open()
    calls = FakeCalls()
    clock = Clock(T)
    announcer = Announcer(FakeJoiner(calls), FakeSounds(), calls)
    scheduler = Scheduler(rules, announcer=announcer, fired=fired, conferences=store, clock=clock)
    watching = Watching(store, scheduler, calls)
    watching.clock = clock
    scheduler.watcher = RosterWatcher(
        watching.subscribe, on_join=scheduler.joined, me=BOT, clock=clock
    )
    return watching


@pytest.fixture
async def runs() -> AsyncIterator[list[Watching]]:
    started: list[Watching] = []
    yield started
    for item in started:
        await item.scheduler.close()
        await item.store.close()


async def test_joins_are_announced_once_from_a_roster_watched_without_joining(
    tmp_path: Path, runs: list[Watching]
) -> None:
    runs.append(bot := await run(tmp_path, settings(WELCOME)))
    await bot.tick(T - 5 * SECOND)
    assert bot.subscriptions == []  # not in progress yet
    await bot.tick(T + SECOND)
    [first] = bot.subscriptions
    assert first.uri == SYNC.uri and first.started and bot.watcher.watched == ["SYNC1"]
    assert bot.calls.log == []  # subscribed only: nobody called, nothing joined
    with capture_logs() as logs:
        first.notify(info(1, "sip:alice@example.test", "sip:Bot@example.test;gruu"))
        await bot.settled()
        first.notify(info(2, "sip:carol@example.test", state="partial"))
        await bot.settled()
    keys = [e["key"] for e in logs if e["event"] == "announcement.rule.claimed"]
    assert keys == [
        "SYNC1/sip:alice@example.test@2026-11-26T09:00:00Z",
        "SYNC1/sip:carol@example.test@2026-11-26T09:00:00Z",
    ]  # the bot itself is nobody to welcome
    assert bot.welcomed == 2

    # the focus ends the subscription; after RETRY a new one brings the full state again
    first.ended.set()
    await bot.tick(T + 20 * SECOND)
    assert bot.watcher.watched == [] and len(bot.subscriptions) == 1
    await bot.tick(T + 20 * SECOND + RETRY)
    second = bot.subscriptions[-1]
    bot.clock.now += 3 * SECOND
    second.notify(info(7, "sip:alice@example.test", "sip:carol@example.test"))
    await bot.settled()
    assert bot.welcomed == 2  # those already there are not welcomed again
    second.notify(info(8, "sip:dave@example.test", state="partial"))
    await bot.settled()
    assert bot.welcomed == 3

    await bot.tick(T + timedelta(minutes=30))  # the conference is over: unsubscribed
    assert second.closed and bot.watcher.watched == []


async def test_a_restart_does_not_welcome_again(tmp_path: Path, runs: list[Watching]) -> None:
    runs.append(first := await run(tmp_path, settings(WELCOME)))
    await first.tick(T + SECOND)
    first.subscriptions[0].notify(info(1, "sip:alice@example.test"))
    await first.settled()
    assert first.welcomed == 1
    await first.scheduler.close()
    assert first.subscriptions[0].closed  # unsubscribed on the way out
    await first.tick(T + 2 * SECOND)  # a tick still running as the bot stops
    assert len(first.subscriptions) == 1 and first.watcher.watched == []
    await first.store.close()
    runs.remove(first)
    runs.append(second := await run(tmp_path, settings(WELCOME), seed=False))
    await second.tick(T + 40 * SECOND)
    second.subscriptions[0].notify(info(3, "sip:alice@example.test", "sip:bob@example.test"))
    await second.settled()
    assert second.welcomed == 1  # bob only


async def test_a_reload_without_the_rule_unsubscribes(tmp_path: Path, runs: list[Watching]) -> None:
    runs.append(bot := await run(tmp_path, settings(WELCOME)))
    await bot.tick(T + SECOND)
    [subscription] = bot.subscriptions
    bot.scheduler.reconfigure(settings({**WELCOME, "target": "OTHER1"}))
    await bot.tick(T + 10 * SECOND)
    assert subscription.closed and bot.watcher.watched == []
    bot.scheduler.reconfigure(settings(WELCOME))
    await bot.tick(T + 20 * SECOND)
    assert len(bot.subscriptions) == 2 and bot.watcher.watched == ["SYNC1"]


async def test_a_focus_that_refuses_is_asked_again_only_after_a_rest(
    tmp_path: Path, runs: list[Watching]
) -> None:
    runs.append(bot := await run(tmp_path, settings(WELCOME)))
    bot.refuse = True
    with capture_logs() as logs:
        await bot.tick(T + SECOND)
    assert [e["event"] for e in logs if e["event"].startswith("announcement.roster")] == [
        "announcement.roster.unavailable"
    ]
    await bot.tick(T + 11 * SECOND)
    assert len(bot.subscriptions) == 1  # resting
    bot.refuse = False
    await bot.tick(T + 2 * SECOND + RETRY)
    assert len(bot.subscriptions) == 2 and bot.subscriptions[-1].started


@pytest.mark.peer
async def test_against_sipp_as_the_focus(
    tmp_path: Path, runs: list[Watching], processes: list[Process]
) -> None:
    """focus_conference.xml: full v1 (alice), partial v2 (bob), a gap (v4: dave) that makes
    the subscription SUBSCRIBE again for the full v5 (alice, bob, dave), then it expects the
    unsubscription - which the conference's end brings."""
    port = free_port()
    sipp = await start(
        "sipp", "-sf", str(SCENARIOS / "focus_conference.xml"), "-m", "1", "-i", "127.0.0.1",
        "-p", str(port), "-nostdin", "-timeout", "30s", "-timeout_error",
    )  # fmt: skip
    processes.append(sipp)
    await listening(port)
    async with join_bot(join_config(Peer("UDP", "127.0.0.1", port))) as bot:
        await _watch_sipp(bot.endpoint, bot.router, port, tmp_path, sipp)


async def _watch_sipp(
    endpoint: SipEndpoint, router: DialogRouter, port: int, tmp_path: Path, sipp: Process
) -> None:
    focus = Conference(**{**_fields(SYNC), "uri": f"sip:conf42@127.0.0.1:{port}"})
    store = ConferenceStore(f"sqlite+aiosqlite:///{tmp_path / 'sipbot.db'}")
    await store.open()
    await store.add(focus)
    fired = FiredLog(store.engine)
    await fired.open()
    calls = FakeCalls()
    clock = Clock(T + SECOND)
    announcer = Announcer(FakeJoiner(calls), FakeSounds(), calls)
    scheduler = Scheduler(
        settings(WELCOME), announcer=announcer, fired=fired, conferences=store, clock=clock
    )
    subscribe = conference_subscriber(endpoint, router, local=BOT, contact=endpoint.contact("bot"))
    watcher = RosterWatcher(subscribe, on_join=scheduler.joined, me=BOT, clock=clock)
    scheduler.watcher = watcher
    try:
        with capture_logs() as logs:
            await scheduler.tick(clock.now)
            await asyncio.wait_for(claimed(logs, 3), WAIT)
            await scheduler.settle()
            clock.now = T + timedelta(minutes=30)
            await scheduler.tick(clock.now)  # over: Expires: 0
        assert await sipp.wait(30) == 0, sipp.text
        keys = [e["key"] for e in logs if e["event"] == "announcement.rule.claimed"]
        assert sorted(k.split("/")[1].split("@2026")[0] for k in keys) == [
            "sip:alice@example.test",
            "sip:bob@example.test",
            "sip:dave@example.test",  # from the full state after the gap, alone
        ]  # each once (the reports are claimed concurrently: in any order)
        assert sum(line.startswith("played speech:Welcome") for line in calls.log) == 3
        # unsubscribed (SIPp checked the Expires: 0); the dialog itself lingers for the final
        # NOTIFY, RFC 6665 §4.1.2.3
        assert watcher.watched == []
    finally:
        await scheduler.close()
        await store.close()


async def claimed(logs: list[dict[str, Any]], count: int) -> None:
    """Until ``count`` occurrences were claimed (the log is checked as the loop turns)."""
    while sum(e["event"] == "announcement.rule.claimed" for e in logs) < count:
        await asyncio.sleep(0.01)


def _fields(conference: Conference) -> dict[str, Any]:
    return {name: getattr(conference, name) for name in conference.__slots__}


@pytest.mark.peer
async def test_the_runtime_watches_for_its_join_rules(
    tmp_path: Path, processes: list[Process]
) -> None:
    """The wiring of bot/runtime.py: the bot's own endpoint, dialog router and identity gate
    carry the subscription; stopping the bot unsubscribes (SIPp expects the Expires: 0)."""
    port = free_port()
    sipp = await start(
        "sipp", "-sf", str(SCENARIOS / "focus_conference.xml"), "-m", "1", "-i", "127.0.0.1",
        "-p", str(port), "-nostdin", "-timeout", "30s", "-timeout_error",
    )  # fmt: skip
    processes.append(sipp)
    await listening(port)
    database = f"sqlite+aiosqlite:///{tmp_path / 'sipbot.db'}"
    now = datetime.now(UTC)
    store = ConferenceStore(database)
    await store.open()
    await store.add(
        Conference(
            **{
                **_fields(SYNC),
                "uri": f"sip:conf42@127.0.0.1:{port}",
                "start": now - timedelta(minutes=1),
                "end": now + timedelta(minutes=30),
            }
        )
    )
    await store.close()
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "conferences": {"database_url": database, "demo_data": False},
            "announcements": {"rules": [{**WELCOME, "target": "all"}]},
        }
    )
    runtime = Runtime(config)
    calls = FakeCalls()
    with capture_logs() as logs:
        await runtime.start()
        try:
            assert runtime.announcements is not None
            scheduler = runtime.announcements.scheduler
            scheduler.announcer = Announcer(FakeJoiner(calls), FakeSounds(), calls)
            await asyncio.wait_for(claimed(logs, 3), WAIT)
            await scheduler.settle()
        finally:
            await runtime.stop()
    assert await sipp.wait(30) == 0, sipp.text
    assert sum(line.startswith("played speech:Welcome") for line in calls.log) == 3
