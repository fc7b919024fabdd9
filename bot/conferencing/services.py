"""Conference services, as UCMA's ``ConferenceServices`` offers them on an endpoint: schedule,
list (summaries), show one (details), cancel - each for the endpoint's own user only.

A backend serves every organizer (the SQL store, or a Lync / Skype for Business focus factory
over C3P); a :class:`BoundConferences` is one user's view of it, handed out with that user's
endpoint (bot.conferencing.endpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.conferencing.models import Conference
from bot.errors import Refusal

EXPIRY_AFTER_END = timedelta(days=14)
"""How long a conference stays listed after it ends (Lync's default expiry)."""


class ConferenceError(Refusal):
    """The conference service said no, or did not answer: the message is for a person."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewConference:
    subject: str
    start: datetime
    duration: timedelta
    access_level: str = "everyone"


class ConferenceBackend(Protocol):
    async def schedule(self, organizer: str, new: NewConference) -> Conference: ...

    async def summaries(self, organizer: str, now: datetime) -> list[Conference]: ...

    async def details(self, organizer: str, conference_id: str) -> Conference | None: ...

    async def cancel(self, organizer: str, conference_id: str) -> bool: ...


class BoundConferences:
    """One user's conference services: every call is for ``organizer`` and nobody else."""

    __slots__ = ("backend", "organizer")

    def __init__(self, backend: ConferenceBackend, organizer: str):
        self.backend = backend
        self.organizer = organizer

    async def schedule(self, new: NewConference) -> Conference:
        return await self.backend.schedule(self.organizer, new)

    async def summaries(self, now: datetime) -> list[Conference]:
        return await self.backend.summaries(self.organizer, now)

    async def details(self, conference_id: str) -> Conference | None:
        return await self.backend.details(self.organizer, conference_id)

    async def cancel(self, conference_id: str) -> bool:
        return await self.backend.cancel(self.organizer, conference_id)
