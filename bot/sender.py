"""Who a request is from, as every layer names them: ``user@domain``.

The identity gate (bot.services.identity) decides it; the IM service, the commands and the
conference services only carry it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Sender:
    """An authenticated (or trusted) sender: ``user@domain``."""

    user: str
    domain: str
    address: str = field(init=False, repr=False, compare=False)
    """``user@domain``: made once with the sender (the gate keeps one Sender per user), not
    at each of the three reads of a command (the dispatcher, the loop guard twice)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", f"{self.user}@{self.domain}")

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{self.domain}"
