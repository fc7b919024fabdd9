"""What the automatic announcements have fired, kept in the store's database (SQLite by
default, PostgreSQL when configured): each occurrence once, across restarts and across
instances sharing the database. A claim is an INSERT under a unique key (rule, occurrence):
whoever inserts first fires; a duplicate means someone already did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import schema

_METADATA = MetaData()
FIRED = Table(
    "announcements_fired",
    _METADATA,
    Column("rule", String(255), primary_key=True),
    Column("occurrence", String(700), primary_key=True),
    Column("fired_at", DateTime(timezone=True), nullable=False, index=True),
)
"""Its own table beside the conferences (bot.conferencing.store), on the store's engine; made
by the migrations (bot/db/migrations), which a test holds equal to this."""


class FiredLog:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def open(self) -> None:
        """The schema at head (the store's open did it already; then nothing is left to do)."""
        await schema.upgrade(self.engine)

    async def claim(self, rule: str, occurrence: str, now: datetime) -> bool:
        """True for the one caller that records (rule, occurrence) first: it fires; False
        when it was recorded already (fired before a restart, or by another instance)."""
        try:
            async with self.engine.begin() as connection:
                await connection.execute(
                    insert(FIRED).values(rule=rule, occurrence=occurrence, fired_at=now)
                )
        except IntegrityError:
            return False
        return True

    async def forget_before(self, moment: datetime) -> int:
        """Drop the records of what fired before ``moment`` (long past any grace); how many."""
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(FIRED).where(FIRED.c.fired_at < moment))
        return int(result.rowcount)
