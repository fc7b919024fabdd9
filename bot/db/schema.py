"""The schema, brought to the newest migration (bot/db/migrations) at start or by
``sipbot db upgrade``, one instance at a time.

Instances starting together on an empty PostgreSQL used to race on CREATE TABLE and one died.
Now whoever takes the lock first migrates (and seeds the demo data, under the same lock); the
others wait for it, then find the schema at head and have nothing to do. The lock is a
PostgreSQL session-level advisory lock (``pg_advisory_lock``), or for a SQLite file an
exclusive ``flock`` of ``<database>.lock`` beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger("bot.db")

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_KEY = 0x5199_B07D_B5C4_E4A1
"""The advisory lock's key (a signed bigint): the same in every instance and sipbot version."""
LEGACY_TABLE = "conferences"
"""A table the create-all of older versions always made: with no ``alembic_version``, the
database is theirs and is adopted."""


@dataclass(frozen=True, slots=True)
class Revision:
    current: str | None
    """None: no schema (an empty database, or one made before migrations)."""
    head: str
    legacy: bool = False
    """Tables without a recorded revision: made by an older sipbot's create-all."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _revision(connection: Connection) -> Revision:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "bot/db/migrations has no revision"
    current = MigrationContext.configure(connection).get_current_revision()
    legacy = current is None and inspect(connection).has_table(LEGACY_TABLE)
    return Revision(current, head, legacy)


def _upgrade(connection: Connection) -> tuple[Revision, Revision]:
    before = _revision(connection)
    if before.current != before.head:
        command.upgrade(_config(connection), "head")
    return before, _revision(connection)


@contextlib.asynccontextmanager
async def exclusive(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of ``engine`` while this process alone holds the schema lock."""
    async with engine.connect() as connection:
        url = engine.url
        if url.get_backend_name() == "postgresql":
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            await connection.commit()
            try:
                yield connection
            finally:
                await connection.rollback()
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                await connection.commit()
        elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            with open(f"{url.database}.lock", "a") as lock:
                await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
                try:
                    yield connection
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        else:  # a private in-memory database: nobody else to race
            yield connection


async def upgrade(engine: AsyncEngine) -> tuple[Revision, Revision]:
    """Migrate to head under the lock (nothing to do when another instance just did); the
    revision found once the lock was held, and the revision now."""
    async with exclusive(engine) as connection:
        before, after = await connection.run_sync(_upgrade)
        await connection.commit()
    if before.legacy:
        log.info("db.adopted", revision=after.current)
    elif before.current != after.current:
        log.info("db.upgraded", previous=before.current, revision=after.current)
    return before, after


async def current(engine: AsyncEngine) -> Revision:
    """The revision the database is at, and the newest one this sipbot ships."""
    async with engine.connect() as connection:
        return await connection.run_sync(_revision)
