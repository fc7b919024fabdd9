"""What a command handler gets: who asked, with what arguments, and the services to use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.sender import Sender

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bot.announcements.service import Announcer, Sounds
    from bot.calls.calls import Calls
    from bot.commands.registry import Registry
    from bot.conferencing.endpoints import UserEndpoint
    from bot.config import Config


CONFIRMATION = "confirm.pending"
"""Memory key of an action waiting for the sender's 'yes' or 'no': any other message drops
it (the commands that answer it are declared with ``answers_question``)."""


class UsageError(Exception):
    """Raised by a handler for arguments it cannot use: the user gets the usage line, plus
    the message when there is one."""


class UserEndpoints(Protocol):
    """Each user's endpoint (bot.conferencing.endpoints.UserEndpointPool)."""

    async def get(self, user: Sender) -> UserEndpoint: ...


class Services(Protocol):
    """What handlers may use (``ctx.services``): nothing else of the running bot."""

    @property
    def zone(self) -> ZoneInfo:
        """The time zone of the conferences' times as people read and write them."""

    @property
    def endpoints(self) -> UserEndpoints:
        """Handlers reach conferences only through ``endpoints.get(ctx.sender)``: as that
        user, for that user's conferences only."""

    def status(self) -> dict[str, Any]:
        """How the bot is doing, for the ``status`` command: label -> value."""

    @property
    def calls(self) -> Calls:
        """The bot's calls (bot.calls): ``await calls.call(uri)`` and the like."""

    @property
    def announcer(self) -> Announcer[Any] | None:
        """Joins, plays, leaves (``announce``/``play``); None where the bot has no calls."""

    @property
    def sounds(self) -> Sounds[Any] | None:
        """Speech and clips to play; None where the bot has no calls."""


@dataclass(slots=True)
class CommandContext:
    """Made by the dispatcher for each command, its fields given in order (their types
    differ: mypy holds the order): given as keywords, a class's generated ``__init__`` gets
    them through a dict made for the call - under callgrind 6.0k instructions an object
    instead of 2.7k."""

    sender: Sender
    args: str
    """The text after the command's name, spaces trimmed."""
    config: Config
    registry: Registry
    services: Services
    memory: dict[str, Any] = field(default_factory=dict)
    """Per-sender state kept between commands (e.g. the numbers of the last listing)."""
    is_admin: bool = False
