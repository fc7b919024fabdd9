"""The SQL conference store (SQLAlchemy 2 async; SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, String, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.conferencing.models import Conference


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "conferences"

    conference_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organizer: Mapped[str] = mapped_column(String(255), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    uri: Mapped[str] = mapped_column(String(512))
    access_level: Mapped[str] = mapped_column(String(32))
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expiry: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dial_in: Mapped[str] = mapped_column(String(512), default="")

    def to_model(self) -> Conference:
        return Conference(
            conference_id=self.conference_id,
            organizer=self.organizer,
            subject=self.subject,
            uri=self.uri,
            access_level=self.access_level,
            start=_aware(self.start),
            end=_aware(self.end),
            expiry=_aware(self.expiry),
            dial_in=self.dial_in,
        )


def _aware(value: datetime) -> datetime:
    # SQLite gives naive datetimes back; they were stored in UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ConferenceStore:
    def __init__(self, database_url: str):
        self.engine: AsyncEngine = create_async_engine(database_url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def open(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(_Base.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def add(self, conference: Conference) -> None:
        async with self._sessions.begin() as session:
            session.add(
                _Row(
                    conference_id=conference.conference_id,
                    organizer=conference.organizer,
                    subject=conference.subject,
                    uri=conference.uri,
                    access_level=conference.access_level,
                    start=conference.start,
                    end=conference.end,
                    expiry=conference.expiry,
                    dial_in=conference.dial_in,
                )
            )

    async def summaries(self, organizer: str, now: datetime) -> list[Conference]:
        """The organizer's unexpired conferences, soonest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(_Row).where(_Row.organizer == organizer).order_by(_Row.start)
            )
            return [c for c in (r.to_model() for r in rows) if c.expiry > now]

    async def get(self, organizer: str, conference_id: str) -> Conference | None:
        """One of the organizer's conferences; nobody sees another organizer's."""
        async with self._sessions() as session:
            row = await session.get(_Row, conference_id)
            return row.to_model() if row is not None and row.organizer == organizer else None

    async def is_empty(self) -> bool:
        async with self._sessions() as session:
            return (await session.scalar(select(_Row.conference_id).limit(1))) is None

    async def seed_demo(self, domain: str, now: datetime) -> None:
        """The demo conferences of the shipped config, when the store is empty."""
        if not await self.is_empty():
            return
        day = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        demo = [
            ("alice", "Weekly sync", "everyone", day.replace(hour=9), 30),
            ("alice", "Quarterly review", "invited", day.replace(hour=14) + timedelta(days=6), 90),
            (
                "bob",
                "Design review",
                "same-enterprise",
                day.replace(hour=11) + timedelta(days=1),
                60,
            ),
        ]
        for number, (user, subject, access, start, minutes) in enumerate(demo, start=1):
            conference_id = f"DEMO{number:04d}"
            await self.add(
                Conference(
                    conference_id=conference_id,
                    organizer=f"{user}@{domain}",
                    subject=subject,
                    uri=f"sip:{user}@{domain};gruu;opaque=app:conf:focus:id:{conference_id}",
                    access_level=access,
                    start=start,
                    end=start + timedelta(minutes=minutes),
                    expiry=start + timedelta(days=14),
                    dial_in=f"+1 555 0100, conference ID {1000 + number}",
                )
            )
