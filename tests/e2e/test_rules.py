"""An automatic announcement end to end: the real ``sipbot run``, a real baresip registered as
bob on the embedded registrar (auto-answering, recording what it hears), and conferences in the
bot's own SQLite store whose URI is bob's - baresip is the "conference".

A ``when: start`` rule speaks at the start of a conference; the bot is then restarted on the
same config and database, still inside ``announcements.grace``: the occurrence is found claimed
in the store and nobody is called again. A conference whose start passed more than ``grace``
before the bot started is never announced."""

from __future__ import annotations

import re
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from bot.conferencing.models import Conference
from bot.conferencing.store import ConferenceStore
from bot.config.announcing import SoundsConfig
from bot.sounds.tts import Speaker
from tests.audio_compare import active_length, envelope_correlation
from tests.peers.baresip import RecordingPhone
from tests.peers.conftest import free_port

from .conftest import StartBot

GRACE = 120.0
LEAD = timedelta(seconds=15)
"""From seeding the store to the conference's start: the bot starts and bob registers first."""
SUBJECT = "Rules check"
SAID = f"{SUBJECT} starts now."
RULE = {"name": "opening", "when": "start", "text": "{subject} starts now.", "target": "all"}
ESTABLISHED = "Call established"


def conference(cid: str, start: datetime) -> Conference:
    return Conference(
        conference_id=cid,
        organizer="alice@example.test",
        subject=SUBJECT,
        uri="sip:bob@example.test",
        access_level="everyone",
        start=start,
        end=start + timedelta(minutes=30),
        expiry=start + timedelta(days=1),
    )


async def seed(database: Path, *conferences: Conference) -> None:
    store = ConferenceStore(f"sqlite+aiosqlite:///{database}")
    await store.open()
    try:
        for item in conferences:
            await store.add(item)
    finally:
        await store.close()


def fired_rows(database: Path) -> list[tuple[str, str]]:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT rule, occurrence FROM announcements_fired"))
            return [(rule, key) for rule, key in rows]
    finally:
        engine.dispose()


def recording(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as wav:
        frames = wav.readframes(wav.getnframes())
        return np.frombuffer(frames, dtype="<i2"), wav.getframerate()


def logged_at(line: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))


@pytest.fixture
async def bob(tmp_path: Path) -> AsyncIterator[list[RecordingPhone]]:
    """Filled by the test once the bot runs (bob registers with it); closed before the bot
    stops (baresip un-registers on the way out)."""
    phones: list[RecordingPhone] = []
    yield phones
    for phone in phones:
        assert await phone.close() == 0, phone.console.tail


async def test_a_start_rule_speaks_once_and_not_again_after_a_restart(
    start_bot: StartBot, tmp_path: Path, bob: list[RecordingPhone]
) -> None:
    database = tmp_path / "bot.db"
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + LEAD
    long_ago = now - timedelta(seconds=GRACE + 60)  # missed by more than grace: never fired
    await seed(database, conference("RULES1", start), conference("MISSED1", long_ago))
    port = free_port()
    settings = {"announcements": {"grace": GRACE, "rules": [RULE]}}
    bot = await start_bot(port, **settings)
    phone = await RecordingPhone.start(
        tmp_path / "bob", user="bob", password="bob-demo", registrar=("127.0.0.1", port)
    )
    bob.append(phone)
    await bot.event("registrar.bindings_updated", user="bob", bindings=1)
    assert datetime.now(UTC) < start, "bob registered after the start: raise LEAD"

    key = f"RULES1@{start:%Y-%m-%dT%H:%M:%SZ}"
    claimed = await bot.event("announcement.rule.claimed", timeout=40, rule="opening", key=key)
    assert start <= logged_at(claimed) < start + timedelta(seconds=3)  # at its time
    fired = await bot.event("announcement.rule.fired", timeout=40, rule="opening")
    assert fired["where"] == f"'{SUBJECT}'" and fired["due"] == start.isoformat()
    await phone.call_closed(1)

    # what bob heard is the sentence, spoken in real time
    reference = await Speaker(SoundsConfig()).speak(SAID)
    expected = active_length(reference.samples, reference.rate)
    [heard] = phone.heard()
    samples, rate = recording(heard)
    assert abs(active_length(samples, rate) - expected) <= 0.05 * expected, (
        active_length(samples, rate),
        expected,
    )
    assert envelope_correlation(samples, rate, reference.samples, reference.rate) >= 0.8
    seconds = float(re.findall(r"terminated \(duration: (\d+) secs\)", phone.console.output)[0])
    assert seconds >= int(expected)

    # the restart, on the same config and database, well inside grace
    assert await bot.stop() == 0, bot.text
    assert datetime.now(UTC) < start + timedelta(seconds=GRACE / 2)
    again = await start_bot(port, **settings)
    await again.event("announcement.rule.already_claimed", rule="opening", key=key)
    await again.event("bot.started")
    assert not [line for line in again.lines if line.get("event") == "announcement.rule.claimed"]
    assert phone.console.output.count(ESTABLISHED) == 1, phone.console.tail
    assert phone.heard() == [heard]
    assert fired_rows(database) == [("opening", key)]  # the missed conference never was
