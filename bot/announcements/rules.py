"""Automatic announcements (``announcements.rules``): at a conference's start, ``minutes``
before its end, on a cron schedule in the rule's time zone, when a participant joins.

Each tick looks at the occurrences due in (last tick, now] - never further back than
``announcements.grace``, so what fell due while the bot was down fires late only within it -
claims each in the store (bot.announcements.fired: once, across restarts and instances), and
plays it in a task of its own. The clock is injected; ``tick(now)`` is the whole decision, so
tests drive it on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from croniter import croniter

from bot.announcements.fired import FiredLog
from bot.announcements.service import Announcer
from bot.announcements.targets import Target, described
from bot.conferencing.models import Conference
from bot.config.announcing import AnnouncementsConfig, RuleConfig
from bot.errors import Refusal

log = structlog.get_logger("bot.announcements")

POLL = 10.0
"""Seconds between ticks at most: a conference scheduled meanwhile is seen within this."""
KEEP_FIRED = timedelta(days=7)
"""Records of what fired are dropped after this: far beyond any grace, so nothing refires."""


class Watcher(Protocol):
    """bot.announcements.watch.RosterWatcher: follows the rosters 'join' rules need."""

    async def follow(self, conferences: list[Conference], now: datetime) -> None: ...

    async def close(self) -> None: ...


class ConferenceSource(Protocol):
    """Every organizer's conferences in a window (bot.conferencing.store.ConferenceStore)."""

    async def between(self, since: datetime, until: datetime) -> list[Conference]: ...


@dataclass(frozen=True, slots=True)
class Occurrence:
    rule: RuleConfig
    at: datetime
    """When it falls due."""
    target: Target
    minutes: int
    """Whole minutes from ``at`` to the conference's end (``{minutes}``); the rule's own
    ``minutes`` for a SIP URI."""
    key: str
    """Unique per rule: the conference id (or URI) and the time, UTC."""

    @property
    def text(self) -> str | None:
        """The rule's text with ``{subject}`` and ``{minutes}`` filled in."""
        if self.rule.text is None:
            return None
        subject = self.target.subject if isinstance(self.target, Conference) else ""
        return self.rule.text.replace("{subject}", subject).replace("{minutes}", str(self.minutes))


def occurrence(
    rule: RuleConfig,
    at: datetime,
    target: Target,
    *,
    extra: str = "",
    keyed: datetime | None = None,
) -> Occurrence:
    """``keyed``: the time in the key when it is not ``at`` (join rules: the conference's)."""
    if isinstance(target, Conference):
        name = target.conference_id
        minutes = int((target.end - at).total_seconds() // 60) if target.end else rule.minutes
    else:
        name, minutes = target, rule.minutes
    key = f"{name}{extra}@{(keyed or at).astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    return Occurrence(rule=rule, at=at, target=target, minutes=minutes, key=key)


def is_uri(target: str) -> bool:
    return target.lower().startswith(("sip:", "sips:"))


def aimed_at(rule: RuleConfig, conference: Conference) -> bool:
    """``target``: all, an organizer's user@domain, or a conference id."""
    if rule.target == "all":
        return True
    if "@" in rule.target:
        return not is_uri(rule.target) and conference.organizer.lower() == rule.target.lower()
    return conference.conference_id == rule.target


def cron_times(rule: RuleConfig, since: datetime, until: datetime) -> Iterator[datetime]:
    """The rule's times in (since, until], read in its time zone (DST included)."""
    assert rule.cron is not None
    times = croniter(rule.cron, since.astimezone(ZoneInfo(rule.time_zone)))
    while (at := times.get_next(datetime)) <= until:
        yield at


def due(
    rules: tuple[RuleConfig, ...], conferences: list[Conference], since: datetime, until: datetime
) -> Iterator[Occurrence]:
    """Every occurrence of ``rules`` in (since, until] ('join' rules fire from the roster)."""
    for rule in rules:
        if not rule.enabled:
            continue
        if rule.when == "cron":
            for at in cron_times(rule, since, until):
                if is_uri(rule.target):
                    yield occurrence(rule, at, rule.target)
                    continue
                for c in conferences:  # those in progress then
                    if aimed_at(rule, c) and c.start and c.end and c.start <= at < c.end:
                        yield occurrence(rule, at, c)
        elif rule.when in ("start", "before_end"):
            for c in conferences:
                at_ = c.start if rule.when == "start" else _before_end(c, rule.minutes)
                if at_ is not None and since < at_ <= until and aimed_at(rule, c):
                    yield occurrence(rule, at_, c)


def watched(
    rules: tuple[RuleConfig, ...], conferences: list[Conference], now: datetime
) -> list[Conference]:
    """The conferences in progress at ``now`` that an enabled 'join' rule aims at: those
    whose roster is followed."""
    joins = [r for r in rules if r.enabled and r.when == "join"]
    return [
        c
        for c in conferences
        if c.start and c.end and c.start <= now < c.end and any(aimed_at(r, c) for r in joins)
    ]


def _before_end(conference: Conference, minutes: int) -> datetime | None:
    return None if conference.end is None else conference.end - timedelta(minutes=minutes)


class Scheduler:
    def __init__(
        self,
        settings: AnnouncementsConfig,
        *,
        announcer: Announcer[Any],
        fired: FiredLog,
        conferences: ConferenceSource,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.settings = settings
        self.announcer = announcer
        self.fired = fired
        self.conferences = conferences
        self._clock = clock
        self._sleep = sleep
        self._since: datetime | None = None
        self._pruned: datetime | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.watcher: Watcher | None = None
        """Follows the rosters of the conferences 'join' rules aim at (set by the wiring:
        it reports to :meth:`joined`); without one, join rules fire only from the rosters
        of conferences the bot is in."""

    def reconfigure(self, settings: AnnouncementsConfig) -> None:
        """A reload: the new rules and grace from the next tick on (what fired stays fired)."""
        self.settings = settings

    async def run(self) -> None:
        """Tick until cancelled; a failing tick (the database away) is logged and retried."""
        while True:
            try:
                wait = await self.tick(self._clock())
            except Exception:
                log.exception("announcement.rules.tick_failed")
                wait = POLL
            await self._sleep(wait)

    async def tick(self, now: datetime) -> float:
        """Fire what fell due since the last tick (within grace); seconds to the next tick."""
        grace = timedelta(seconds=self.settings.grace)
        # after a restart, back to grace; while running, back to the last tick (a tick late
        # never drops what fell due between two), unless the loop stalled (a suspended host)
        since = now - grace
        if self._since is not None:
            since = max(self._since, now - max(grace, timedelta(seconds=2 * POLL)))
        rules = self.settings.rules
        horizon = timedelta(seconds=POLL, minutes=max((r.minutes for r in rules), default=0))
        watching = self.watcher is not None
        wanted = any(not is_uri(r.target) and (watching or r.when != "join") for r in rules)
        conferences = await self.conferences.between(since, now + horizon) if wanted else []
        for found in due(rules, conferences, since, now):
            await self._claimed(found, now)
        if self.watcher is not None:  # a reload that drops the join rules unsubscribes here
            await self.watcher.follow(watched(rules, conferences, now), now)
        self._since = now
        await self._prune(now)
        upcoming = [o.at for o in due(rules, conferences, now, now + timedelta(seconds=POLL))]
        return max(0.0, min([POLL, *((at - now).total_seconds() for at in upcoming)]))

    async def joined(self, conference: Conference, participant: str, when: datetime) -> None:
        """The roster saw ``participant`` join ``conference`` at ``when`` (RFC 4575
        ``joining-info``, or the time it was seen): the 'join' rules aimed at it fire.

        Once per participant and occurrence of the conference: the key holds the conference's
        start, not ``when``, so the full state of a re-subscription (everyone there reported
        as joined again), a restart of the bot, or a re-join after a dropped call announces
        nobody a second time."""
        now = self._clock()
        if now - when > timedelta(seconds=self.settings.grace):
            return
        keyed = conference.start or conference.expiry
        for rule in self.settings.rules:
            if rule.enabled and rule.when == "join" and aimed_at(rule, conference):
                found = occurrence(rule, when, conference, extra=f"/{participant}", keyed=keyed)
                await self._claimed(found, now)

    async def _claimed(self, found: Occurrence, now: datetime) -> None:
        if not await self.fired.claim(found.rule.name, found.key, now):
            # fired before a restart, or by another instance on the same database
            log.info("announcement.rule.already_claimed", rule=found.rule.name, key=found.key)
            return
        log.info("announcement.rule.claimed", rule=found.rule.name, key=found.key)
        task = asyncio.ensure_future(self._fire(found))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fire(self, found: Occurrence) -> None:
        where = described(found.target)
        try:
            text = found.text
            sounds = self.announcer.sounds
            sound = await (
                sounds.speech(text) if text is not None else sounds.clip(found.rule.clip or "")
            )
            done = await self.announcer.announce(found.target, sound)
        except Refusal as exc:
            log.warning(
                "announcement.rule.refused", rule=found.rule.name, where=where, reason=str(exc)
            )
        except Exception:
            log.exception("announcement.rule.failed", rule=found.rule.name, where=where)
        else:
            log.info("announcement.rule.fired", rule=found.rule.name, where=where,
                     due=found.at.isoformat(), seconds=round(done.seconds, 1))  # fmt: skip

    async def _prune(self, now: datetime) -> None:
        if self._pruned is None or now - self._pruned > timedelta(days=1):
            self._pruned = now
            await self.fired.forget_before(now - KEEP_FIRED)

    async def settle(self) -> None:
        """Wait for the announcements under way."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop the announcements under way (each leaves its call: bot.announcements.service)
        and unsubscribe from the rosters followed."""
        if self.watcher is not None:
            await self.watcher.close()
        for task in self._tasks:
            task.cancel()
        await self.settle()
