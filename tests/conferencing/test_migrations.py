"""The schema as migrations (bot/db): instances starting at the same moment on an empty database
all come up and seed the demo once; a database an older sipbot made is adopted with its rows;
the migrations make what the code's models describe; ``sipbot db upgrade`` and ``current``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from bot.announcements.fired import FIRED, FiredLog
from bot.conferencing.store import METADATA, ConferenceStore
from bot.config import Config
from bot.db import schema
from bot.runtime import Runtime
from tests.conferencing.postgres import fresh_database

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DOMAIN = "example.test"
ROOT = Path(__file__).resolve().parents[2]
HEAD = schema.Revision("0001", "0001")


async def start(store: ConferenceStore) -> None:
    """What Runtime.start does with the database: open, seed the demo, the fired log."""
    await store.open()
    await store.seed_demo(DOMAIN, NOW)
    await FiredLog(store.engine).open()


async def listed(store: ConferenceStore, user: str) -> list[str]:
    return [c.conference_id for c in await store.summaries(f"{user}@{DOMAIN}", NOW)]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_two_instances_starting_together_on_an_empty_database_both_come_up(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for attempt in range(10):  # the race was intermittent: every start of ten must come up
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / f'{attempt}.db'}"
        else:
            url = await fresh_database(request.getfixturevalue("postgres"))
        stores = [ConferenceStore(url), ConferenceStore(url)]
        try:
            await asyncio.gather(*(start(store) for store in stores))
            for store in stores:  # the demo seeded once: each conference once, seen by both
                assert await listed(store, "alice") == ["DEMO0001", "DEMO0002"], attempt
                assert await listed(store, "bob") == ["DEMO0003"], attempt
                assert await schema.current(store.engine) == HEAD
        finally:
            for store in stores:
                await store.close()


async def test_two_runtimes_starting_together_on_an_empty_postgresql_both_come_up(
    postgres: str,
) -> None:
    for attempt in range(10):
        config = Config.model_validate(
            {
                "sip": {"domain": DOMAIN, "listen": [{"host": "127.0.0.1", "port": 0}]},
                "conferences": {"database_url": await fresh_database(postgres)},
            }
        )
        runtimes = [Runtime(config), Runtime(config)]
        try:
            await asyncio.gather(*(runtime.start() for runtime in runtimes))
            for runtime in runtimes:
                mine = await runtime.store.summaries(f"alice@{DOMAIN}", datetime.now(UTC))
                assert [c.conference_id for c in mine] == ["DEMO0001", "DEMO0002"], attempt
        finally:
            for runtime in runtimes:
                await runtime.stop()


async def test_a_database_an_older_version_made_is_adopted_with_its_rows(
    database_url: str,
) -> None:
    engine = create_async_engine(database_url)
    old = MetaData()  # before the announcements: conferences and c3p schedules only
    for table in METADATA.tables.values():
        table.to_metadata(old)
    row = {
        "conference_id": "OLD00001",
        "organizer": f"alice@{DOMAIN}",
        "subject": "Kept",
        "uri": "sip:alice@example.test;gruu;opaque=app:conf:focus:id:OLD00001",
        "access_level": "everyone",
        "start": NOW + timedelta(hours=1),
        "end": NOW + timedelta(hours=2),
        "expiry": NOW + timedelta(days=14),
        "dial_in": "",
    }
    async with engine.begin() as connection:  # what the create-all at start used to do
        await connection.run_sync(old.create_all)
        await connection.execute(insert(old.tables["conferences"]).values(row))
    await engine.dispose()
    store = ConferenceStore(database_url, cache_seconds=5)
    try:
        assert (await schema.current(store.engine)).legacy
        with capture_logs() as logs:
            await store.open()
        assert [e["event"] for e in logs if e["event"].startswith("db.")][0] == "db.adopted"
        assert await listed(store, "alice") == ["OLD00001"]
        assert await schema.current(store.engine) == HEAD
        fired = FiredLog(store.engine)
        await fired.open()
        assert await fired.claim("start", "OLD00001@2026-11-26T10:00:00Z", NOW)
    finally:
        await store.close()


def _differences(connection: Connection) -> list[object]:
    models = MetaData()
    for table in (*METADATA.tables.values(), FIRED):
        table.to_metadata(models)
    return list(compare_metadata(MigrationContext.configure(connection), models))


async def test_the_migrations_make_what_the_models_describe(database_url: str) -> None:
    store = ConferenceStore(database_url)
    try:
        await store.open()
        async with store.engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await store.close()


def sipbot_db(action: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "db", action, "--config", "config.yaml"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(cwd / "xdg")},
    )


def said(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    return out.strip()


async def test_sipbot_db_upgrade_from_the_command_line(postgres: str, tmp_path: Path) -> None:
    url = await fresh_database(postgres)
    (tmp_path / "config.yaml").write_text(f"conferences:\n  database_url: {url}\n")
    assert said(sipbot_db("current", tmp_path)).startswith("none: no schema yet")
    # two ops (or an op and an instance) at the same moment: one migrates, the other waits
    together = [sipbot_db("upgrade", tmp_path), sipbot_db("upgrade", tmp_path)]
    assert sorted(said(p) for p in together) == [
        "the schema is at 0001, the newest: nothing to do",
        "upgraded the schema from nothing to 0001 (newest)",
    ]
    assert said(sipbot_db("current", tmp_path)) == "0001 (newest)"
    store = ConferenceStore(url)
    try:
        await store.open()
        assert await listed(store, "alice") == []  # migrating seeds nothing: sipbot run does
    finally:
        await store.close()
