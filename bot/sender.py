"""Who a request is from, as every layer names them: ``user@domain``.

The identity gate (bot.services.identity) decides it; the IM service, the commands and the
conference services only carry it."""

from __future__ import annotations

from dataclasses import dataclass


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
