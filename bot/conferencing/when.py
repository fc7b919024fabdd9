"""Times and durations as people type them in `schedule`: ISO times, ``HH:MM``, ``today``,
``tomorrow``, ``in 2h``; durations ``30m``, ``1h``, ``1h30m``, ``90`` (minutes)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.sip.grammar import is_digits

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_SPAN = re.compile(r"^(?:(\d+)\s*h(?:ours?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?)?)?)?$")


class WhenError(ValueError):
    """Not a time or duration we understand; the message says what would be."""


def parse_duration(text: str) -> timedelta:
    text = text.strip().lower()
    if is_digits(text):
        minutes = int(text)
    else:
        m = _SPAN.match(text)
        if not text or m is None or not any(m.groups()):
            raise WhenError(f"'{text}' is not a duration: try 30m, 1h or 1h30m")
        minutes = int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    if not 0 < minutes <= 24 * 60:
        raise WhenError("a conference lasts between 1 minute and 24 hours")
    return timedelta(minutes=minutes)


def parse_when(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """An aware datetime for ``text``; times of day are in ``zone``."""
    words = text.strip().lower().split()
    local_now = now.astimezone(zone)
    if not words:
        raise WhenError("say when: try 14:30, tomorrow 9:00, in 2h or 2026-12-01T10:00")
    if words[0] == "in" and len(words) >= 2:
        return now + parse_duration(" ".join(words[1:]))
    if words[0] in ("today", "tomorrow"):
        day = local_now.date() + timedelta(days=1 if words[0] == "tomorrow" else 0)
        clock = _clock(words[1]) if len(words) > 1 else time(9, 0)
        return datetime.combine(day, clock, tzinfo=zone)
    if len(words) == 1 and _CLOCK.match(words[0]):
        at = datetime.combine(local_now.date(), _clock(words[0]), tzinfo=zone)
        return at if at > local_now else at + timedelta(days=1)  # the next such time
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WhenError(
            f"'{text.strip()}' is not a time: try 14:30, tomorrow 9:00, in 2h or 2026-12-01T10:00"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def _clock(word: str) -> time:
    m = _CLOCK.match(word)
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise WhenError(f"'{word}' is not a time of day: try 09:00 or 14:30")
    return time(int(m.group(1)), int(m.group(2)))
