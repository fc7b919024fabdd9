"""When a C3P conference starts and ends: kept by the bot, not by the focus factory.

MS-CONFPRO's addConference has no start or end time (neither the §4.1 example nor UCMA's
ConferenceScheduleInformation carries one; only ``expiry-time``), so the bot keeps the schedule
it was asked for next to the conference, keyed by organizer and conference id: in the SQL store
(:class:`bot.conferencing.store.ConferenceStore`) when running, in memory otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

Schedule = tuple[datetime, datetime]
"""(start, end)."""


class Schedules(Protocol):
    async def keep_schedule(
        self, organizer: str, conference_id: str, start: datetime, end: datetime
    ) -> None: ...

    async def schedules_of(self, organizer: str) -> dict[str, Schedule]: ...

    async def forget_schedule(self, organizer: str, conference_id: str) -> None: ...


class MemorySchedules:
    """Schedules for as long as the process runs."""

    def __init__(self) -> None:
        self._kept: dict[str, dict[str, Schedule]] = {}

    async def keep_schedule(
        self, organizer: str, conference_id: str, start: datetime, end: datetime
    ) -> None:
        self._kept.setdefault(organizer, {})[conference_id] = (start, end)

    async def schedules_of(self, organizer: str) -> dict[str, Schedule]:
        return dict(self._kept.get(organizer, {}))

    async def forget_schedule(self, organizer: str, conference_id: str) -> None:
        self._kept.get(organizer, {}).pop(conference_id, None)
