"""The rosters 'join' rules need: the bot follows who is in a conference without being in it.

For each conference in progress that an enabled ``when: join`` rule aims at, the scheduler's
tick (bot.announcements.rules) hands the list to :meth:`RosterWatcher.follow`, which

- subscribes to the conference event package at the conference URI (RFC 4575 §3 over
  RFC 6665) without joining its audio: a conference URI takes subscriptions whether or not
  the subscriber is a participant (RFC 4575 §1, RFC 4579 §5.3); the subscription itself
  (bot.calls.subscription) refreshes, and re-subscribes on a version gap;
- reports each participant who joins (RFC 4575 ``joined``: connected now, not before) to
  the scheduler's ``joined``, never the bot itself; the key of that occurrence is the
  participant and the conference's start (bot.announcements.rules.Scheduler.joined), so the
  full state of a re-subscription does not announce again those already there;
- unsubscribes (``Expires: 0``, RFC 6665 §4.1.2.3) when the conference is no longer in the
  list: it ended, or no rule aims at it after a reload;
- does not retry for ``RETRY`` seconds a focus that refused or ended the subscription (a
  softphone that is no focus answers 489 or 405 to every SUBSCRIBE).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from bot.calls.join import is_lync_focus
from bot.calls.subscription import ConferenceSubscription, Router
from bot.conferencing.models import Conference
from bot.conferencing.roster import Roster, RosterChange
from bot.sip.headers import Address
from bot.transport.endpoint import SipEndpoint

log = structlog.get_logger("bot.announcements")

RETRY = timedelta(minutes=5)
"""After a refused or ended subscription, the conference is not asked again for this long."""

OnChange = Callable[[RosterChange, Roster], None]
OnJoin = Callable[[Conference, str, datetime], Awaitable[None]]
"""Scheduler.joined: (conference, participant entity, when it was seen)."""


class Subscription(Protocol):
    """bot.calls.subscription.ConferenceSubscription."""

    ended: asyncio.Event

    async def start(self) -> None: ...

    async def close(self) -> None: ...


Subscribe = Callable[[str, OnChange], Subscription]
"""A subscription to a conference URI, reporting to the callback (not started yet)."""


def conference_subscriber(
    endpoint: SipEndpoint, router: Router, *, local: str, contact: Address
) -> Subscribe:
    """The runtime's: SUBSCRIBE from the bot's address of record (``local``) on its endpoint,
    in-dialog NOTIFYs routed by ``router``; a Lync focus URI with the Lync headers."""

    def subscribe(uri: str, on_change: OnChange) -> Subscription:
        return ConferenceSubscription(
            endpoint,
            router,
            uri,
            local=local,
            contact=contact,
            lync=is_lync_focus(uri),
            on_change=on_change,
        )

    return subscribe


@dataclass(slots=True)
class _Watch:
    conference: Conference
    subscription: Subscription
    starting: asyncio.Task[None] | None = field(default=None, repr=False)


class RosterWatcher:
    def __init__(
        self,
        subscribe: Subscribe,
        *,
        on_join: OnJoin,
        me: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        """``me``: the bot's own address, never reported as joining."""
        self._subscribe = subscribe
        self._on_join = on_join
        self._me = bare(me)
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        """By conference id."""
        self._resting: dict[str, datetime] = {}
        """Conference id -> when it may be asked again (after a refusal or an end)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def watched(self) -> list[str]:
        """The ids of the conferences followed (or being subscribed to) now."""
        return list(self._watches)

    async def follow(self, conferences: list[Conference], now: datetime) -> None:
        """Follow exactly ``conferences`` (those in progress a join rule aims at): subscribe
        to the new ones, unsubscribe from those no longer listed. Nothing once closed (a
        tick still under way while the bot stops subscribes to nothing new)."""
        wanted = {} if self._closed else {c.conference_id: c for c in conferences}
        for cid, watch in list(self._watches.items()):
            if cid not in wanted:
                del self._watches[cid]
                await self._close(watch, "no longer wanted")
            elif watch.subscription.ended.is_set():
                del self._watches[cid]
                self._resting[cid] = now + RETRY
        self._resting = {cid: t for cid, t in self._resting.items() if t > now and cid in wanted}
        for cid, conference in wanted.items():
            if cid not in self._watches and cid not in self._resting:
                self._watch(conference)

    def _watch(self, conference: Conference) -> None:
        subscription = self._subscribe(conference.uri, self._reporter(conference))
        watch = _Watch(conference, subscription)
        watch.starting = asyncio.ensure_future(self._start(watch))
        self._watches[conference.conference_id] = watch

    async def _start(self, watch: _Watch) -> None:
        cid = watch.conference.conference_id
        try:
            await watch.subscription.start()
        except Exception as exc:  # refused, unreachable: said in the log, asked again later
            log.info("announcement.roster.unavailable", conference=cid, error=str(exc))
            if self._watches.get(cid) is watch:
                del self._watches[cid]
            self._resting[cid] = self._clock() + RETRY
        else:
            log.info("announcement.roster.watched", conference=cid, uri=watch.conference.uri)

    def _reporter(self, conference: Conference) -> OnChange:
        def report(change: RosterChange, roster: Roster) -> None:
            seen = self._clock()
            for entity in change.joined:
                if bare(entity) != self._me:
                    task = asyncio.ensure_future(self._on_join(conference, entity, seen))
                    self._tasks.add(task)
                    task.add_done_callback(self._reported)

        return report

    def _reported(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("announcement.roster.report_failed", error=repr(error))

    async def _close(self, watch: _Watch, reason: str) -> None:
        if watch.starting is not None and not watch.starting.done():
            watch.starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch.starting
        await watch.subscription.close()
        log.info(
            "announcement.roster.unwatched", conference=watch.conference.conference_id,
            reason=reason,
        )  # fmt: skip

    async def settle(self) -> None:
        """Wait until the joins reported so far have been handed on."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Unsubscribe from every conference (the bot stops)."""
        self._closed = True
        watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            await self._close(watch, "the bot stopped")
        await self.settle()


def bare(uri: str) -> str:
    """``user@host`` of a SIP URI, lower case: how roster entities and the bot compare."""
    address = uri.strip().strip("<>").lower()
    for scheme in ("sip:", "sips:"):
        address = address.removeprefix(scheme)
    return address.split(";")[0].split("?")[0]
