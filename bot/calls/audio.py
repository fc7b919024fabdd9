"""An answered audio call (:class:`AudioCall`): its INVITE dialog, its media stream, what offer
and answer settled, and new offers inside the call (RFC 3264 §8); the stream factory the calls
open their media with (bot.media)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import numpy as np
import structlog
from numpy.typing import NDArray

from bot.calls.invite import InviteSession
from bot.config.announcing import MediaConfig
from bot.errors import Refusal
from bot.media.ports import PortRange
from bot.media.stream import AudioStream
from bot.sip.errors import SipParseError
from bot.sip.sdp import SessionDescription
from bot.sip.sdp_audio import (
    AudioPolicy,
    AudioSession,
    IceParams,
    answer_audio,
    next_version,
)

log = structlog.get_logger("bot.calls")
SDP = "application/sdp"


class CallFailed(Refusal):
    """A call that could not be made or kept; the message says why, for a person."""


class RtpCounts(Protocol):
    """A stream's packet counts (bot.media.stream.StreamStats)."""

    @property
    def packets_sent(self) -> int: ...

    @property
    def packets_received(self) -> int: ...


class MediaStream(Protocol):
    """What a call needs of its media (bot.media.stream.AudioStream)."""

    @property
    def stats(self) -> RtpCounts: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def ice_ufrag(self) -> str: ...

    @property
    def ice_pwd(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    def start(self, session: AudioSession) -> None: ...

    def update(self, session: AudioSession) -> None: ...

    async def play(self, pcm: NDArray[np.int16]) -> float: ...

    async def close(self) -> None: ...


class Playable(Protocol):
    """A sound (bot.sounds.sound.Sound): its samples at a given rate."""

    def at(self, rate: int) -> NDArray[np.int16]: ...


StreamFactory = Callable[[str, MediaConfig], Awaitable[MediaStream]]
"""(host, settings) -> an open stream on a port of ``settings``' range."""


class AudioStreams:
    """The default :data:`StreamFactory`: bot.media's AudioStream on one PortRange (a new range
    when a reload changes ``media.port_min``/``port_max``)."""

    def __init__(self) -> None:
        self._ports: PortRange | None = None

    async def __call__(self, host: str, settings: MediaConfig) -> MediaStream:
        wanted = (settings.port_min, settings.port_max)
        if self._ports is None or (self._ports.low, self._ports.high) != wanted:
            self._ports = PortRange(*wanted)
        return await AudioStream.open(host=host, ports=self._ports, settings=settings)


class AudioCall:
    """An answered audio call: its INVITE dialog, its stream and what was settled."""

    def __init__(
        self,
        invite: InviteSession,
        stream: MediaStream,
        session: AudioSession,
        *,
        policy: AudioPolicy,
        description: SessionDescription,
        ice: IceParams | None,
    ):
        self.invite = invite
        self.stream = stream
        self.session = session
        self.remote = invite.target
        self._policy = policy
        self._description = description
        self._ice = ice
        invite.on_offer = self.answer_offer

    @property
    def ended(self) -> asyncio.Event:
        return self.invite.ended

    @property
    def end_reason(self) -> str:
        return self.invite.end_reason

    async def play(self, sound: Playable) -> float:
        """Play ``sound`` (at the codec's rate) in real time; the seconds played. Raises
        CallFailed when the call ends first."""
        if self.ended.is_set():
            raise CallFailed(f"The call to {self.remote} had ended: {self.end_reason}")
        playing = asyncio.ensure_future(self.stream.play(sound.at(self.stream.sample_rate)))
        ending = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({playing, ending}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
            if not playing.done():
                playing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await playing
        if playing.cancelled():
            raise CallFailed(f"The call to {self.remote} ended while playing: {self.end_reason}")
        return playing.result()

    async def hangup(self) -> None:
        """BYE (RFC 3261 §15.1.1) and the stream closed; nothing when it ended already."""
        try:
            await self.invite.bye("the bot hung up.")
        finally:
            await self.stream.close()

    def answer_offer(self, body: bytes, content_type: str) -> tuple[bytes, str]:
        """A new offer inside the call (re-INVITE or UPDATE: hold, a new address) answered
        with the same stream and key (RFC 3264 §8, RFC 4568 §7.1.4); the stream follows."""
        if content_type.split(";")[0].strip().lower() != SDP:
            raise SipParseError(f"a new offer in {content_type or 'no type'}, not SDP", status=488)
        result = answer_audio(
            SessionDescription.parse(body),
            self.stream.host,
            self.stream.port,
            self._policy,
            crypto=self.session.local_crypto,
            ice=self._ice,
        )
        if result is None:
            raise SipParseError("the new offer has no audio stream the bot can take", status=488)
        answer, session = result
        self._description = next_version(self._description, answer)
        self.session = session
        self.stream.update(session)
        log.info("calls.reoffered", call_id=self.invite.call_id, direction=session.direction,
                 remote=f"{session.remote_address}:{session.remote_port}")  # fmt: skip
        return self._description.serialize(), SDP
