"""The running bot's side of :class:`bot.commands.context.Services`: built by the runtime,
holding no reference back to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.calls.calls import Calls
from bot.conferencing.endpoints import UserEndpointPool

if TYPE_CHECKING:
    from bot.announcements.service import Announcer, Sounds


@dataclass(slots=True, kw_only=True)
class BotServices:
    """What command handlers may use (``ctx.services``)."""

    zone: ZoneInfo
    """Swapped by a reload (``conferences.time_zone``)."""
    endpoints: UserEndpointPool
    """Each user's endpoint: handlers reach conferences only through ``endpoints.get(sender)``."""
    status: Callable[[], dict[str, Any]]
    """How the bot is doing (the runtime's figures), for the ``status`` command."""
    calls: Calls
    """The bot's calls (bot.calls)."""
    announcer: Announcer[Any] | None = None
    """Announcements (``announce``/``play``): set by the runtime once calls exist
    (bot.announcements.build_announcements)."""
    sounds: Sounds[Any] | None = None
    """What ``announce``/``play`` render: speech and clips."""
