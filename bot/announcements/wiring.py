"""What the runtime calls to set announcements up once calls, joins and sounds exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.announcements.fired import FiredLog
from bot.announcements.rules import ConferenceSource, Scheduler
from bot.announcements.service import Announcer, Calls, Joiner, S, Sounds
from bot.announcements.watch import RosterWatcher, Subscribe
from bot.config.announcing import AnnouncementsConfig


@dataclass(frozen=True, slots=True)
class Announcements(Generic[S]):
    announcer: Announcer[S]
    """For ``BotServices.announcer`` (with ``BotServices.sounds = announcer.sounds``)."""
    scheduler: Scheduler
    """Run ``scheduler.run()`` as a task; ``scheduler.reconfigure(config.announcements)`` on a
    reload; ``scheduler.close()`` (then cancel the task) on the way out, before the calls close:
    it also unsubscribes from the rosters its watcher follows for the 'join' rules."""


async def build_announcements(
    *,
    joiner: Joiner[S],
    sounds: Sounds[S],
    calls: Calls[S],
    store: ConferenceSource,
    engine: AsyncEngine,
    settings: AnnouncementsConfig,
    subscribe: Subscribe | None = None,
    me: str = "",
) -> Announcements[S]:
    """The Announcer and the rules' scheduler; what fired is kept on ``engine`` (the
    conference store's: ``ConferenceStore.engine``), its table made by the migrations (bot/db).
    ``subscribe`` (bot.announcements.watch.conference_subscriber): how the scheduler's
    watcher follows a conference's roster for the 'join' rules, ``me`` the bot's own
    address (never announced as joining); without it join rules have no roster to watch."""
    announcer = Announcer(joiner, sounds, calls)
    fired = FiredLog(engine)
    await fired.open()
    scheduler = Scheduler(settings, announcer=announcer, fired=fired, conferences=store)
    if subscribe is not None:
        scheduler.watcher = RosterWatcher(subscribe, on_join=scheduler.joined, me=me)
    return Announcements(announcer, scheduler)
