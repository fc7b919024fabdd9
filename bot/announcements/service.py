"""Announcer: join (a conference through the Joiner, a SIP URI through Calls), play one sound,
leave whatever happens.

Written against the interfaces of issue 17 (bot.calls.calls.Calls / AudioCall,
bot.calls.join.Joiner / Joined, bot.sounds.library.Sounds / Sound) as the Protocols below, so
this module imports none of them. The sound type is a type parameter: the Announcer passes
sounds from ``Sounds`` to ``AudioCall.play`` untouched.

One announcement at a time per target: a second one while the first plays is refused with a
sentence (not queued: a queued announcement would be heard minutes late, out of context)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import structlog

from bot.announcements.targets import Target, described, is_conference_uri
from bot.conferencing.models import Conference
from bot.errors import Refusal

log = structlog.get_logger("bot.announcements")

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)
S_contra = TypeVar("S_contra", contravariant=True)


class Call(Protocol[S_contra]):
    """bot.calls.audio.AudioCall: an answered call with its media running."""

    async def play(self, sound: S_contra) -> float: ...

    async def hangup(self) -> None: ...


class Joined(Protocol[S_contra]):
    """bot.calls.join.Joined: the bot in a conference."""

    @property
    def call(self) -> Call[S_contra]: ...

    async def leave(self) -> None: ...


class Joiner(Protocol[S_contra]):
    """bot.calls.join.Joiner."""

    async def join(
        self, conference: Conference | str, *, on_roster: Callable[..., Any] | None = None
    ) -> Joined[S_contra]: ...


class Calls(Protocol[S_contra]):
    """bot.calls.calls.Calls."""

    async def call(self, target: str, *, lync: bool = False) -> Call[S_contra]: ...


class Sounds(Protocol[S_co]):
    """bot.sounds.library.Sounds: sounds already padded with lead/trail silence."""

    async def speech(self, text: str) -> S_co: ...

    async def clip(self, name: str) -> S_co: ...


@dataclass(frozen=True, slots=True)
class Announced:
    where: str
    """'Weekly sync' (a conference's subject, quoted) or the SIP URI."""
    seconds: float
    """Of sound played."""


class Announcer(Generic[S]):
    def __init__(self, joiner: Joiner[S], sounds: Sounds[S], calls: Calls[S]):
        self.joiner = joiner
        self.sounds = sounds
        self.calls = calls
        self._busy: set[str] = set()

    async def announce(self, target: Target, sound: S) -> Announced:
        """Join ``target``, play ``sound``, leave (also when playing fails or is cancelled).
        Refusals (CallFailed and the like) pass through as their sentence."""
        where = described(target)
        key = target.conference_id if isinstance(target, Conference) else target.lower()
        if key in self._busy:
            raise Refusal(
                f"An announcement is already playing in {where}; send yours again when it is over."
            )
        self._busy.add(key)
        try:
            seconds = await self._play(target, sound)
        finally:
            self._busy.discard(key)
        log.info("announcement.played", where=where, seconds=round(seconds, 1))
        return Announced(where=where, seconds=seconds)

    async def _play(self, target: Target, sound: S) -> float:
        if isinstance(target, Conference) or is_conference_uri(target):
            joined = await self.joiner.join(target)
            try:
                return await joined.call.play(sound)
            finally:
                await _quietly(joined.leave(), "left")
        call = await self.calls.call(target)
        try:
            return await call.play(sound)
        finally:
            await _quietly(call.hangup(), "hung up")

    def busy(self) -> int:
        """Announcements playing now."""
        return len(self._busy)


async def _quietly(ending: Awaitable[None], what: str) -> None:
    """Leaving must not hide how the announcement went: a failure to leave is logged only.
    Shielded, so a cancelled announcement still leaves (BYE) the call it made."""
    try:
        await asyncio.shield(ending)
    except Exception:
        log.exception("announcement.not_" + what.replace(" ", "_"))
