"""Small doubles of the issue-17 pieces the Announcer drives (Joiner, Calls, Sounds), for
these tests only: they keep what was asked of them and play by waiting on an event, never
by sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.conferencing.models import Conference
from bot.errors import Refusal


@dataclass(frozen=True, slots=True)
class Tone:
    """Stands in for bot.sounds.Sound: what was rendered, and how long it lasts."""

    what: str
    duration: float


@dataclass
class FakeCall:
    remote: str
    log: list[str]
    fail_play: Exception | None = None
    gate: asyncio.Event | None = None
    """When set, play waits for it (a long announcement, released by the test)."""
    playing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a sound starts (shared by every call of one FakeCalls)."""
    played: list[Tone] = field(default_factory=list)
    hung_up: bool = False

    async def play(self, sound: Tone) -> float:
        self.playing.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_play is not None:
            raise self.fail_play
        self.played.append(sound)
        self.log.append(f"played {sound.what} to {self.remote}")
        return sound.duration

    async def hangup(self) -> None:
        self.hung_up = True
        self.log.append(f"hung up {self.remote}")


@dataclass
class FakeJoined:
    call: FakeCall
    log: list[str]

    async def leave(self) -> None:
        self.log.append(f"left {self.call.remote}")


class FakeJoiner:
    def __init__(self, calls: FakeCalls):
        self.calls = calls

    async def join(
        self, conference: Conference | str, *, on_roster: Callable[..., Any] | None = None
    ) -> FakeJoined:
        uri = conference.uri if isinstance(conference, Conference) else conference
        self.calls.log.append(f"joined {uri}")
        return FakeJoined(self.calls.made(uri), self.calls.log)


class FakeCalls:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.refuse: dict[str, str] = {}
        """target -> the CallFailed sentence it gets."""
        self.fail_play: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.calls: list[FakeCall] = []
        self.playing = asyncio.Event()
        """Set when any call starts playing."""

    def made(self, target: str) -> FakeCall:
        if target in self.refuse:
            raise Refusal(self.refuse[target])
        call = FakeCall(
            target, self.log, fail_play=self.fail_play, gate=self.gate, playing=self.playing
        )
        self.calls.append(call)
        return call

    async def call(self, target: str, *, lync: bool = False) -> FakeCall:
        self.log.append(f"called {target}")
        return self.made(target)


class FakeSounds:
    """Speech lasts 0.1 s a character; clips are 'chime' (1.5 s) only."""

    def __init__(self) -> None:
        self.spoken: list[str] = []

    async def speech(self, text: str) -> Tone:
        self.spoken.append(text)
        return Tone(f"speech:{text}", round(len(text) * 0.1, 1))

    async def clip(self, name: str) -> Tone:
        if name != "chime":
            raise Refusal(f"There is no clip '{name}'. Clips here: chime.")
        return Tone(f"clip:{name}", 1.5)
