"""What the runtime calls to set announcements up once calls, joins and sounds exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.announcements.fired import FiredLog
from bot.announcements.rules import ConferenceSource, Scheduler
from bot.announcements.service import Announcer, Calls, Joiner, S, Sounds
from bot.config.sections import AnnouncementsConfig


@dataclass(frozen=True, slots=True)
class Announcements(Generic[S]):
    announcer: Announcer[S]
    """For ``BotServices.announcer`` (with ``BotServices.sounds = announcer.sounds``)."""
    scheduler: Scheduler
    """Run ``scheduler.run()`` as a task; ``scheduler.reconfigure(config.announcements)`` on a
    reload; ``scheduler.close()`` (then cancel the task) on the way out, before the calls close.
    A joined conference's roster reports new participants to ``scheduler.joined``."""


async def build_announcements(
    *,
    joiner: Joiner[S],
    sounds: Sounds[S],
    calls: Calls[S],
    store: ConferenceSource,
    engine: AsyncEngine,
    settings: AnnouncementsConfig,
) -> Announcements[S]:
    """The Announcer and the rules' scheduler; what fired is kept on ``engine`` (the
    conference store's: ``ConferenceStore.engine``), its table created where missing."""
    announcer = Announcer(joiner, sounds, calls)
    fired = FiredLog(engine)
    await fired.open()
    scheduler = Scheduler(settings, announcer=announcer, fired=fired, conferences=store)
    return Announcements(announcer, scheduler)
