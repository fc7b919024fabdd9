"""What a command handler gets: who asked, with what arguments, and the services to use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.commands.registry import Registry
    from bot.config import Config


CONFIRMATION = "confirm.pending"
"""Memory key of an action waiting for the sender's 'yes' or 'no': any other message drops
it (the commands that answer it are declared with ``answers_question``)."""


class Refusal(Exception):
    """A handler's polite no (a service refused or did not answer): the message is the reply."""


@dataclass(frozen=True, slots=True)
class Sender:
    """An authenticated (or trusted) sender: ``user@domain``."""

    user: str
    domain: str

    @property
    def address(self) -> str:
        return f"{self.user}@{self.domain}"

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{self.domain}"


@dataclass(slots=True, kw_only=True)
class CommandContext:
    sender: Sender
    args: str
    """The text after the command's name, spaces trimmed."""
    config: Config
    registry: Registry
    services: Any
    """The runtime's services (conference store, status…); handlers use what they need."""
    memory: dict[str, Any] = field(default_factory=dict)
    """Per-sender state kept between commands (e.g. the numbers of the last listing)."""
    is_admin: bool = False
