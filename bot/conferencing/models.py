"""What a conference looks like to the rest of the bot (UCMA ConferenceServices' summary)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Conference:
    conference_id: str
    organizer: str
    """``user@domain`` of the organizer: the only one who sees it in ``my meetings``."""
    subject: str
    uri: str
    """The conference (focus) URI participants join."""
    access_level: str
    """``everyone``, ``same-enterprise``, ``invited`` or ``locked`` (UCMA access levels)."""
    start: datetime | None
    """None when the server keeps no time for it (a Lync meeting space, MS-CONFPRO)."""
    end: datetime | None
    expiry: datetime
    """After this the conference is gone from listings."""
    dial_in: str = ""
    """Phone numbers and PIN, as text."""


def soonest_first(conference: Conference) -> tuple[datetime, str]:
    return (conference.start or conference.expiry, conference.conference_id)
