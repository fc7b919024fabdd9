"""The SQL conference store (SQLAlchemy 2 async; SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import errno
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import DateTime, RowMapping, String, bindparam, delete, select, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.conferencing.cache import ListingCache
from bot.conferencing.models import Conference, soonest_first
from bot.conferencing.services import EXPIRY_AFTER_END, NewConference
from bot.db import schema
from bot.db.notify import NOTIFY, Invalidations


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    """The tables' shape for queries; the tables themselves are made by the migrations
    (bot/db/migrations), which a test holds equal to these models."""

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


class _ScheduleRow(_Base):
    """When a conference of the c3p backend starts and ends: the focus factory keeps no
    schedule (MS-CONFPRO §4.1), so the bot does (bot.conferencing.c3p_schedules)."""

    __tablename__ = "c3p_schedules"

    organizer: Mapped[str] = mapped_column(String(255), primary_key=True)
    conference_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))


METADATA = _Base.metadata
"""The store's tables as the code sees them (what older versions created at start)."""


def _model(row: RowMapping) -> Conference:
    return Conference(
        conference_id=row["conference_id"],
        organizer=row["organizer"],
        subject=row["subject"],
        uri=row["uri"],
        access_level=row["access_level"],
        start=_aware(row["start"]),
        end=_aware(row["end"]),
        expiry=_aware(row["expiry"]),
        dial_in=row["dial_in"],
    )


def _aware(value: datetime) -> datetime:
    # SQLite gives naive datetimes back; they were stored in UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def default_url(data_dir: Path) -> str:
    """The database when ``conferences.database_url`` is not set: SQLite in the data dir."""
    return f"sqlite+aiosqlite:///{data_dir / 'sipbot.db'}"


DEMO = {
    "alice": (
        ("DEMO0001", "Weekly sync", "everyone", timedelta(days=1, hours=9), 30),
        ("DEMO0002", "Quarterly review", "invited", timedelta(days=7, hours=14), 90),
    ),
    "bob": (("DEMO0003", "Design review", "same-enterprise", timedelta(days=2, hours=11), 60),),
}
"""The demo users' conferences: id, subject, access level, start (after today's midnight
UTC) and minutes."""

_TABLE = _Row.__table__
_BY_ORGANIZER = select(_TABLE).where(_TABLE.c.organizer == bindparam("organizer"))


class ConferenceStore:
    """Conferences in SQL. Listings are read with SQLAlchemy Core (a third of the ORM's cost
    per query) and kept in a :class:`ListingCache` for ``cache_seconds``; writes through the
    store refresh the organizer's listing at once, and on PostgreSQL in every other instance
    sharing the database too (bot.db.notify; the cache is off while that is not heard)."""

    def __init__(self, database_url: str, *, cache_seconds: float = 0.0, dial_in: str = ""):
        self.engine: AsyncEngine = create_async_engine(database_url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.listings = ListingCache(self._load, cache_seconds)
        self.dial_in = dial_in
        self.shared = self.engine.url.get_backend_name() == "postgresql"
        """Other instances may write to this database (and hear this one's writes)."""
        self.invalidations: Invalidations | None = None

    async def open(self) -> None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            folder = Path(str(url.database)).parent
            if not folder.is_dir():  # said plainly, before the driver's thread fails on it
                raise FileNotFoundError(
                    errno.ENOENT, "no such directory for the SQLite database", str(folder)
                )
        await schema.upgrade(self.engine)
        if self.shared:
            dsn = self.engine.url.set(drivername="postgresql")
            self.invalidations = Invalidations(
                dsn.render_as_string(hide_password=False),
                changed=self.listings.invalidate,
                all_changed=self.listings.clear,
            )
            await self.invalidations.start()

    async def close(self) -> None:
        if self.invalidations is not None:
            await self.invalidations.close()
        await self.engine.dispose()

    async def _changed(self, into: AsyncConnection | AsyncSession, organizer: str) -> None:
        """In the writing transaction: tell the other instances (bot.db.notify)."""
        if self.shared:
            await into.execute(text(NOTIFY), {"organizer": organizer})

    async def _listing(self, organizer: str) -> list[Conference]:
        """Cached, unless invalidations from other instances may be missed right now."""
        if self.invalidations is None or self.invalidations.listening:
            return await self.listings.get(organizer)
        return await self._load(organizer)

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
            await self._changed(session, conference.organizer)
        self.listings.invalidate(conference.organizer)

    async def summaries(self, organizer: str, now: datetime) -> list[Conference]:
        """The organizer's unexpired conferences, soonest first."""
        return [c for c in await self._listing(organizer) if c.expiry > now]

    async def details(self, organizer: str, conference_id: str) -> Conference | None:
        """One of the organizer's conferences; nobody sees another organizer's."""
        for conference in await self._listing(organizer):
            if conference.conference_id == conference_id:
                return conference
        return None

    async def schedule(self, organizer: str, new: NewConference) -> Conference:
        """A new conference with a fresh id (MS-CONFPRO §2.2.1.2: 8-32 alphanumerics)."""
        conference_id = secrets.token_hex(6).upper()
        end = new.start + new.duration
        conference = Conference(
            conference_id=conference_id,
            organizer=organizer,
            subject=new.subject,
            uri=f"sip:{organizer};gruu;opaque=app:conf:focus:id:{conference_id}",
            access_level=new.access_level,
            start=new.start,
            end=end,
            expiry=end + EXPIRY_AFTER_END,
            dial_in=self.dial_in,
        )
        await self.add(conference)
        return conference

    async def cancel(self, organizer: str, conference_id: str) -> bool:
        """Delete one of the organizer's conferences; False when they have no such one."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                delete(_Row).where(_Row.organizer == organizer, _Row.conference_id == conference_id)
            )
            await self._changed(connection, organizer)
        self.listings.invalidate(organizer)
        return bool(result.rowcount)

    async def between(self, since: datetime, until: datetime) -> list[Conference]:
        """Every organizer's conferences with a time that overlaps [since, until] (starting by
        ``until``, ending from ``since`` on), soonest first: what automatic announcements
        consider (bot.announcements.rules). Not cached: asked once per scheduler tick."""
        query = select(_TABLE).where(
            _TABLE.c.start <= until.astimezone(UTC), _TABLE.c.end >= since.astimezone(UTC)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return sorted((_model(row) for row in rows), key=soonest_first)

    async def keep_schedule(
        self, organizer: str, conference_id: str, start: datetime, end: datetime
    ) -> None:
        """The schedule of a c3p conference (bot.conferencing.c3p_schedules)."""
        async with self._sessions.begin() as session:
            await session.merge(
                _ScheduleRow(organizer=organizer, conference_id=conference_id, start=start, end=end)
            )

    async def schedules_of(self, organizer: str) -> dict[str, tuple[datetime, datetime]]:
        async with self.engine.connect() as connection:
            result = await connection.execute(
                select(_ScheduleRow.conference_id, _ScheduleRow.start, _ScheduleRow.end).where(
                    _ScheduleRow.organizer == organizer
                )
            )
            rows = result.all()
        return {ident: (_aware(start), _aware(end)) for ident, start, end in rows}

    async def forget_schedule(self, organizer: str, conference_id: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                delete(_ScheduleRow).where(
                    _ScheduleRow.organizer == organizer,
                    _ScheduleRow.conference_id == conference_id,
                )
            )

    async def _load(self, organizer: str) -> list[Conference]:
        async with self.engine.connect() as connection:
            result = await connection.execute(_BY_ORGANIZER, {"organizer": organizer})
            rows = result.mappings().all()
        return sorted((_model(row) for row in rows), key=soonest_first)

    async def seed_demo(self, domain: str, now: datetime) -> None:
        """The demo conferences of the shipped config, in the days after ``now``, for each
        demo user who has none upcoming (the first start, or theirs ended or cancelled).
        Under the schema lock: instances starting together seed once, whoever is first."""
        async with schema.exclusive(self.engine):
            await self._seed(domain, now)

    async def _seed(self, domain: str, now: datetime) -> None:
        midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        for user, entries in DEMO.items():
            organizer = f"{user}@{domain}"
            if any((c.end or c.expiry) > now for c in await self._load(organizer)):
                continue
            ids = [entry[0] for entry in entries]
            async with self.engine.begin() as connection:
                await connection.execute(delete(_Row).where(_Row.conference_id.in_(ids)))
            for conference_id, subject, access, offset, minutes in entries:
                start = midnight + offset
                await self.add(
                    Conference(
                        conference_id=conference_id,
                        organizer=organizer,
                        subject=subject,
                        uri=f"sip:{organizer};gruu;opaque=app:conf:focus:id:{conference_id}",
                        access_level=access,
                        start=start,
                        end=start + timedelta(minutes=minutes),
                        expiry=start + timedelta(days=14),
                        dial_in=f"+1 555 0100, conference ID {1000 + int(conference_id[4:])}",
                    )
                )
