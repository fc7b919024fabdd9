"""The Announcer: join or call, play, leave whatever happens; one announcement at a time per
target; refusals pass through as their sentence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.announcements.service import Announced, Announcer
from bot.conferencing.models import Conference
from bot.errors import Refusal

from .doubles import FakeCalls, FakeJoiner, FakeSounds, Tone

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SYNC = Conference(
    conference_id="DEMO0001",
    organizer="alice@example.test",
    subject="Weekly sync",
    uri="sip:alice@example.test;gruu;opaque=app:conf:focus:id:DEMO0001",
    access_level="everyone",
    start=START,
    end=START + timedelta(minutes=30),
    expiry=START + timedelta(days=14),
)
BOB = "sip:bob@example.test"


def announcer() -> tuple[Announcer[Tone], FakeCalls]:
    calls = FakeCalls()
    return Announcer(FakeJoiner(calls), FakeSounds(), calls), calls


async def test_a_conference_is_joined_played_to_and_left() -> None:
    service, calls = announcer()
    done = await service.announce(SYNC, Tone("hello", 4.2))
    assert done == Announced(where="'Weekly sync'", seconds=4.2)
    assert calls.log == [f"joined {SYNC.uri}", f"played hello to {SYNC.uri}", f"left {SYNC.uri}"]


async def test_a_sip_uri_is_called_and_hung_up_a_focus_uri_is_joined() -> None:
    service, calls = announcer()
    assert await service.announce(BOB, Tone("chime", 1.5)) == Announced(BOB, 1.5)
    assert calls.log == [f"called {BOB}", f"played chime to {BOB}", f"hung up {BOB}"]
    calls.log.clear()
    await service.announce(SYNC.uri, Tone("hi", 1.0))
    assert calls.log[0] == f"joined {SYNC.uri}" and calls.log[-1] == f"left {SYNC.uri}"


async def test_it_leaves_when_playing_fails_and_the_failure_is_not_hidden() -> None:
    service, calls = announcer()
    calls.fail_play = RuntimeError("stream broke")
    with pytest.raises(RuntimeError, match="stream broke"):
        await service.announce(BOB, Tone("x", 1.0))
    assert calls.log == [f"called {BOB}", f"hung up {BOB}"]
    with pytest.raises(RuntimeError):
        await service.announce(SYNC, Tone("x", 1.0))
    assert calls.log[-1] == f"left {SYNC.uri}" and service.busy() == 0


async def test_a_refused_call_is_its_sentence_and_leaves_nothing_busy() -> None:
    service, calls = announcer()
    calls.refuse[BOB] = "sip:bob@example.test is busy."
    with pytest.raises(Refusal, match="^sip:bob@example.test is busy.$"):
        await service.announce(BOB, Tone("x", 1.0))
    assert service.busy() == 0
    del calls.refuse[BOB]
    assert (await service.announce(BOB, Tone("x", 1.0))).seconds == 1.0


async def test_a_second_announcement_into_the_same_place_is_refused_meanwhile() -> None:
    service, calls = announcer()
    calls.gate = asyncio.Event()
    first = asyncio.ensure_future(service.announce(SYNC, Tone("first", 2.0)))
    await asyncio.wait_for(calls.playing.wait(), 5)
    with pytest.raises(Refusal, match="already playing in 'Weekly sync'; send yours again"):
        await service.announce(SYNC, Tone("second", 1.0))
    other = asyncio.ensure_future(service.announce(BOB, Tone("elsewhere", 1.0)))
    calls.gate.set()
    assert (await asyncio.wait_for(first, 5)).seconds == 2.0
    assert (await asyncio.wait_for(other, 5)).where == BOB
    assert (await service.announce(SYNC, Tone("third", 3.0))).seconds == 3.0


async def test_a_cancelled_announcement_still_hangs_up() -> None:
    service, calls = announcer()
    calls.gate = asyncio.Event()
    task = asyncio.ensure_future(service.announce(BOB, Tone("long", 60.0)))
    await asyncio.wait_for(calls.playing.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls.calls[0].hung_up and service.busy() == 0
