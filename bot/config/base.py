"""What every section of config.yaml's schema shares: frozen models that refuse unknown keys,
the error a check raises, and the checks more than one section uses."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Problem(ValueError):
    """A mistake a check found. ``path``: where below the checked key it sits (a check of a
    whole section names the line of the key at fault); ``secret``: the value may hold a
    password, so the message does not repeat it."""

    def __init__(self, message: str, *, path: tuple[str | int, ...] = (), secret: bool = False):
        super().__init__(message)
        self.path = path
        self.secret = secret


def time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known IANA time zone (such as UTC or Europe/Paris)") from None
    return name
