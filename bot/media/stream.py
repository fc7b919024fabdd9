"""The media of one call: an RTP/RTCP port pair, packets paced on absolute deadlines, symmetric
RTP (RFC 4961), RTCP reports, SRTP when keyed, and answers to ICE connectivity checks."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import numpy as np
import structlog
from numpy.typing import NDArray

from bot.config.announcing import MediaConfig
from bot.media import rtcp
from bot.media.codecs import Codec, codec
from bot.media.ice import IceCredentials, is_stun
from bot.media.pacing import Pacer
from bot.media.player import Player
from bot.media.ports import PortPair, PortRange
from bot.media.rtp import Packetiser, RtpPacket
from bot.media.srtp import SrtpPair
from bot.sip.sdp_audio import AudioSession

log = structlog.get_logger("bot.media")

Address = tuple[str, int]
SENDING_DIRECTIONS = ("sendrecv", "sendonly")
"""Our directions in which we send (``AudioSession.direction`` is ours, RFC 3264 §6.1): the
peer holding the call makes it ``recvonly`` or ``inactive`` (§8.4) and we keep quiet."""


@dataclass(slots=True)
class StreamStats:
    packets_sent: int = 0
    octets_sent: int = 0
    """RTP payload octets (RFC 3550 §6.4.1 sender's octet count)."""
    packets_received: int = 0


class _Socket(asyncio.DatagramProtocol):
    """Hands the datagrams of one of the stream's sockets to the stream."""

    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # IPv6 sources come as (host, port, flowinfo, scope_id): compare host and port only
        self.on_datagram(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # an ICMP port unreachable from a peer that is not listening (yet): keep going
        log.debug("media.send_failed", error=str(exc))


@dataclass(slots=True, kw_only=True)
class _Sending:
    """What start() settled: the codec, numbering, keys and where packets go."""

    codec: Codec
    ptime: int
    packetiser: Packetiser
    pacer: Pacer
    srtp: SrtpPair | None
    keys: tuple[bytes, bytes] | None
    destination: Address
    rtcp_destination: Address
    held: bool
    next_slot: int = 0
    """The slot (anchor + slot × ptime) the packetiser's timestamp stands at."""
    sent_since_report: bool = False
    last_sent: int = -2
    """The last slot a packet went out in."""


class AudioStream:
    """One call's audio. ``open`` binds the ports, ``start`` takes the settled session,
    ``play`` sends, ``close`` (idempotent; also ``async with``) says BYE and frees everything."""

    def __init__(self, *, host: str, settings: MediaConfig) -> None:
        self.host = host
        self.port = 0
        self.settings = settings
        self.credentials = IceCredentials()
        self.stats = StreamStats()
        self.received = False
        self._pair: PortPair | None = None
        self._sending: _Sending | None = None
        self._report: asyncio.TimerHandle | None = None
        self._playing = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, *, host: str, ports: PortRange, settings: MediaConfig) -> AudioStream:
        stream = cls(host=host, settings=settings)
        stream._pair = await ports.open(
            host, lambda: _Socket(stream._on_rtp), lambda: _Socket(stream._on_rtcp)
        )
        stream.port = stream._pair.port
        log.debug("media.stream_opened", host=host, port=stream.port)
        return stream

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ice_ufrag(self) -> str:
        return self.credentials.ufrag

    @property
    def ice_pwd(self) -> str:
        return self.credentials.pwd

    @property
    def sample_rate(self) -> int:
        """Samples per second ``play`` takes: the settled codec's (8000 before ``start``)."""
        return self._sending.codec.sample_rate if self._sending else 8000

    async def __aenter__(self) -> AudioStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- session --------------------------------------------------------------------------

    def start(self, session: AudioSession) -> None:
        """Begin the call's media clock with the settled session."""
        if self._closed or self._pair is None:
            raise RuntimeError("the audio stream is closed")
        if self._sending is not None:
            self.update(session)
            return
        chosen = codec(session.codec)
        srtp = _srtp(session)
        loop = asyncio.get_running_loop()
        ptime = session.ptime
        self._sending = _Sending(
            codec=chosen,
            ptime=ptime,
            packetiser=Packetiser(session.payload_type, chosen.timestamp_step(ptime)),
            pacer=Pacer(ptime / 1000, clock=loop.time, start=loop.time() + _phase(ptime)),
            srtp=srtp,
            keys=_keys(session),
            destination=(session.remote_address, session.remote_port),
            rtcp_destination=_rtcp_address(session),
            held=_held(session),
        )
        self._report = loop.call_later(self.settings.rtcp_interval, self._send_report)
        log.info(
            "media.stream_started",
            port=self.port,
            remote=f"{session.remote_address}:{session.remote_port}",
            codec=chosen.name,
            srtp=srtp is not None,
        )

    def update(self, session: AudioSession) -> None:
        """A re-INVITE or UPDATE settled again: a new address, hold when our direction became
        ``recvonly``/``inactive`` (the peer's ``sendonly``/``inactive``, RFC 3264 §8.4: we stop
        sending, the RTP clock and RTCP keep running)."""
        sending = self._sending
        if sending is None:
            self.start(session)
            return
        destination = (session.remote_address, session.remote_port)
        if destination != sending.destination:
            sending.destination = destination
            sending.rtcp_destination = _rtcp_address(session)
        if session.payload_type != sending.packetiser.payload_type:
            # a new codec from the next sound on: the one playing ends here (its octets are
            # the old codec's)
            sending.codec = codec(session.codec)
            sending.packetiser.payload_type = session.payload_type
        keys = _keys(session)
        if keys != sending.keys:  # new keys, new contexts (RFC 4568 §7.1.4); same keys, same
            sending.srtp, sending.keys = _srtp(session), keys
        sending.held = _held(session)
        log.info("media.stream_updated", port=self.port, held=sending.held)

    # --- sending --------------------------------------------------------------------------

    async def play(self, pcm: NDArray[np.int16]) -> float:
        """Send ``pcm`` (mono at ``sample_rate``) paced in real time; the seconds of audio that
        went by (all of it, unless the stream was closed meanwhile)."""
        sending = self._sending
        if sending is None:
            raise RuntimeError("play before start")
        async with self._playing:
            payloads = sending.codec.payloads(np.asarray(pcm, dtype=np.int16), sending.ptime)
            pacer = sending.pacer
            first = max(sending.next_slot, math.ceil(pacer.elapsed() / pacer.interval))
            codec = sending.codec
            player = Player(
                payloads,
                first,
                deadline=sending.pacer.deadline,
                send=lambda slot, payload, starts: self._send_slot(sending, slot, payload, starts),
                # closed, or a re-INVITE changed the codec under this sound
                over=lambda: self.closed or sending.codec is not codec,
            )
            try:
                slots = await player.done
            finally:
                player.stop()
        return slots * sending.ptime / 1000

    def _send_slot(self, sending: _Sending, slot: int, payload: bytes, first: bool) -> None:
        packetiser = sending.packetiser
        packetiser.skip(slot - sending.next_slot)
        sending.next_slot = slot + 1
        if sending.held:
            packetiser.skip()
            return
        # RFC 3551 §4.1: the marker bit flags the first packet after silence (a new sound, or
        # the first after a hold)
        marker = first or sending.last_sent != slot - 1
        sending.last_sent = slot
        data = packetiser.next(payload, marker=marker).to_bytes()
        if sending.srtp is not None:
            data = sending.srtp.protect(data)
        assert self._pair is not None
        self._pair.rtp.sendto(data, sending.destination)
        self.stats.packets_sent += 1
        self.stats.octets_sent += len(payload)
        sending.sent_since_report = True

    # --- RTCP -----------------------------------------------------------------------------

    def _compound(self, sending: _Sending, *, leaving: bool) -> bytes:
        """SR (or RR when we sent nothing since the last report) + SDES CNAME (+ BYE):
        RFC 3550 §6.1, §6.4."""
        packetiser = sending.packetiser
        ssrc = packetiser.ssrc
        if sending.sent_since_report:
            elapsed = sending.pacer.elapsed()
            rtp_time = packetiser.timestamp + round(
                (elapsed / sending.pacer.interval - sending.next_slot)
                * packetiser.samples_per_packet
            )
            head = rtcp.sender_report(
                ssrc,
                unix_time=time.time(),
                rtp_timestamp=rtp_time,
                packets=packetiser.packets,
                octets=packetiser.octets,
            )
        else:
            head = rtcp.receiver_report(ssrc)
        data = head + rtcp.sdes_cname(ssrc, f"sipbot@{self.host}")
        if leaving:
            data += rtcp.bye(ssrc)
        return sending.srtp.protect_rtcp(data) if sending.srtp else data

    def _send_rtcp(self, data: bytes, sending: _Sending) -> None:
        assert self._pair is not None
        self._pair.rtcp.sendto(data, sending.rtcp_destination)

    def _send_report(self) -> None:
        sending = self._sending
        if sending is None or self._closed:
            return
        self._send_rtcp(self._compound(sending, leaving=False), sending)
        sending.sent_since_report = False
        loop = asyncio.get_running_loop()
        self._report = loop.call_later(self.settings.rtcp_interval, self._send_report)

    # --- receiving ------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: Address) -> None:
        if is_stun(data):
            self._answer_check(data, addr, rtcp=False)
            return
        sending = self._sending
        if sending is None or len(data) < 12 or data[0] >> 6 != 2:
            return
        if 192 <= data[1] <= 223:  # RFC 5761 §4: RTCP multiplexed on the RTP port
            self._on_rtcp(data, addr)
            return
        if sending.srtp is not None and sending.srtp.unprotect(data) is None:
            return  # not from the peer holding the key: never latch onto it
        if sending.srtp is None:
            try:
                RtpPacket.parse(data)
            except ValueError:
                return
        self.stats.packets_received += 1
        self.received = True
        if addr != sending.destination:
            # RFC 4961 §4: send to where the peer's RTP comes from
            log.info("media.destination_latched", port=self.port, remote=f"{addr[0]}:{addr[1]}")
            sending.destination = addr

    def _answer_check(self, data: bytes, addr: Address, *, rtcp: bool) -> None:
        """ICE connectivity checks reach both host candidates: RTP (component 1) and RTCP
        (component 2, RFC 8445 §5.1.1.1); each is answered from the socket it came to."""
        answer = self.credentials.answer(data, addr)
        if answer is not None and self._pair is not None:
            (self._pair.rtcp if rtcp else self._pair.rtp).sendto(answer, addr)

    def _on_rtcp(self, data: bytes, addr: Address) -> None:
        if is_stun(data):
            self._answer_check(data, addr, rtcp=True)
            return
        sending = self._sending
        if sending is None:
            return
        clear = sending.srtp.unprotect_rtcp(data) if sending.srtp else data
        if clear is None:
            return
        try:
            rtcp.parse_compound(clear)
        except ValueError:
            return
        sending.rtcp_destination = addr  # RFC 4961 §4 for RTCP too

    # --- the end --------------------------------------------------------------------------

    async def close(self) -> None:
        """RTCP BYE (RFC 3550 §6.6), both sockets closed, the ports back in the range."""
        if self._closed:
            return
        self._closed = True
        if self._report is not None:
            self._report.cancel()
        sending, pair = self._sending, self._pair
        if pair is None:
            return
        if sending is not None:
            self._send_rtcp(self._compound(sending, leaving=True), sending)
        await pair.aclose()
        log.info(
            "media.stream_closed",
            port=self.port,
            packets_sent=self.stats.packets_sent,
            packets_received=self.stats.packets_received,
        )


_streams_started = itertools.count()
GOLDEN = (5**0.5 - 1) / 2


def _phase(ptime: int) -> float:
    """Where in the packet period this stream's packets fall: successive streams spread evenly
    over it (the golden-ratio sequence), so calls started together do not all send on the same
    instant every 20 ms (a burst of 200 packets takes milliseconds to send)."""
    return (next(_streams_started) * GOLDEN) % 1.0 * ptime / 1000


def _srtp(session: AudioSession) -> SrtpPair | None:
    if session.local_crypto is None or session.remote_crypto is None:
        return None
    return SrtpPair(session.local_crypto, session.remote_crypto)


def _keys(session: AudioSession) -> tuple[bytes, bytes] | None:
    if session.local_crypto is None or session.remote_crypto is None:
        return None
    return (session.local_crypto.key, session.remote_crypto.key)


def _held(session: AudioSession) -> bool:
    # our direction (RFC 3264 §6.1, §8.4); port 0 rejects the stream (§8.2)
    return session.direction not in SENDING_DIRECTIONS or session.remote_port == 0


def _rtcp_address(session: AudioSession) -> Address:
    # RFC 3550 §11: the next port above RTP (until the peer's RTCP arrives from elsewhere)
    return (session.remote_address, session.remote_port + 1)
