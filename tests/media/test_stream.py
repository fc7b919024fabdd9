"""AudioStream on real loopback sockets: a UDP socket pair plays the peer."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import statistics
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from aioice import stun

from bot.config.announcing import MediaConfig
from bot.media import rtcp
from bot.media.codecs import codec
from bot.media.ports import PortRange
from bot.media.rtp import RtpPacket
from bot.media.srtp import SrtpPair
from bot.media.stream import AudioStream
from bot.sip.sdp_audio import AudioSession, Crypto
from tests.media.peer import Peer
from tests.media.ports import some_range

PTIME = 0.02


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DirectedSession(AudioSession):
    """AudioSession with our ``direction``, until bot.sip.sdp_audio grows the field."""

    direction: str = "sendrecv"


def session(peer: Peer, **changes: Any) -> AudioSession:
    host, port = peer.address
    fields = {"remote_address": host, "remote_port": port, "payload_type": 0, "codec": "PCMU"}
    fields |= changes
    if "direction" in fields and "direction" not in {
        f.name for f in dataclasses.fields(AudioSession)
    }:
        return DirectedSession(**fields)
    return AudioSession(**fields)


def tone(seconds: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclasses.dataclass
class Far:
    """The peer's RTP and RTCP sockets (an even/odd pair, as RFC 3550 §11 expects)."""

    rtp: Peer
    rtcp: Peer


@pytest.fixture
def ports() -> PortRange:
    return some_range()


@pytest.fixture
async def far() -> AsyncIterator[Far]:
    peers: list[Peer] = []

    def make() -> Peer:
        peers.append(Peer())
        return peers[-1]

    pair = await some_range().open("127.0.0.1", make, make)
    yield Far(*peers)
    await pair.aclose()


async def opened(ports: PortRange, **settings: Any) -> AudioStream:
    return await AudioStream.open(host="127.0.0.1", ports=ports, settings=MediaConfig(**settings))


async def rtp_packets(peer: Peer, count: int) -> list[tuple[float, RtpPacket]]:
    received = []
    while len(received) < count:
        at, data, _ = await peer.receive()
        received.append((at, RtpPacket.parse(data)))
    return received


async def test_packets_are_paced_numbered_and_carry_the_sound(ports: PortRange, far: Far) -> None:
    sound = tone(0.5)
    async with await opened(ports) as stream:
        stream.start(session(far.rtp))
        assert stream.sample_rate == 8000
        played = asyncio.create_task(stream.play(sound))
        packets = await rtp_packets(far.rtp, 25)
        assert await played == pytest.approx(0.5)
    times = [at for at, _ in packets]
    intervals = np.diff(times)
    # paced in real time, not a burst: 24 intervals of 20 ms, most of them on time
    assert times[-1] - times[0] == pytest.approx(24 * PTIME, abs=0.015)
    assert statistics.median(intervals) == pytest.approx(PTIME, abs=0.002)
    assert np.mean(np.abs(intervals - PTIME) < 0.005) >= 0.9
    rtp = [packet for _, packet in packets]
    assert [(p.sequence - rtp[0].sequence) % 65536 for p in rtp] == list(range(25))
    assert [(p.timestamp - rtp[0].timestamp) % 2**32 for p in rtp] == [160 * n for n in range(25)]
    assert [p.marker for p in rtp] == [True] + [False] * 24
    assert {(p.ssrc, p.payload_type) for p in rtp} == {(rtp[0].ssrc, 0)}
    pcmu = codec("PCMU")
    heard = np.concatenate([pcmu.decode(p.payload) for p in rtp])
    assert np.array_equal(heard, pcmu.decode(pcmu.encode(sound)))
    assert stream.stats.packets_sent == 25 and stream.stats.octets_sent == 4000


async def test_symmetric_rtp_sends_to_where_the_peer_sends_from(ports: PortRange, far: Far) -> None:
    elsewhere = await Peer.open()
    try:
        async with await opened(ports) as stream:
            stream.start(session(far.rtp))
            playing = asyncio.create_task(stream.play(tone(5)))
            _, first, _ = await far.rtp.receive()
            assert not stream.received
            # the peer's RTP comes from another port than its SDP said (a NAT, say)
            ours = RtpPacket(payload_type=0, sequence=1, timestamp=0, ssrc=99, payload=b"\xff")
            elsewhere.send(ours.to_bytes(), ("127.0.0.1", stream.port))
            _, data, source = await elsewhere.receive()
            assert source == ("127.0.0.1", stream.port)
            assert RtpPacket.parse(data).ssrc == RtpPacket.parse(first).ssrc  # same stream
            assert stream.received and stream.stats.packets_received == 1
            # non-RTP garbage from a third party does not move the destination
            far.rtcp.send(b"\x00garbage", ("127.0.0.1", stream.port))
            for _ in range(3):
                await elsewhere.receive()
            playing.cancel()
    finally:
        elsewhere.close()


@pytest.mark.parametrize("component", [1, 2])
async def test_stun_binding_requests_are_answered_on_both_candidates(
    ports: PortRange, far: Far, component: int
) -> None:
    async with await opened(ports) as stream:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{stream.ice_ufrag}:peerfrag"
        request.attributes["ICE-CONTROLLING"] = 1
        request.add_message_integrity(stream.ice_pwd.encode())
        request.add_fingerprint()
        candidate = ("127.0.0.1", stream.port + component - 1)  # RTP, then RTCP
        far.rtp.send(bytes(request), candidate)
        _, data, source = await far.rtp.receive()
    assert source == candidate
    response = stun.parse_message(data)  # checks FINGERPRINT
    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == request.transaction_id
    assert response.check_message_integrity(stream.ice_pwd.encode())
    assert response.attributes["XOR-MAPPED-ADDRESS"] == far.rtp.address


async def test_srtp_stream_is_decrypted_by_the_peer_and_ends_with_an_srtcp_bye(
    ports: PortRange, far: Far
) -> None:
    ours, theirs = Crypto.generate(), Crypto.generate()
    peer_keys = SrtpPair(theirs, ours)
    sound = tone(0.1)
    async with await opened(ports) as stream:
        stream.start(session(far.rtp, local_crypto=ours, remote_crypto=theirs))
        await stream.play(sound)
        payloads, ssrcs = [], set()
        for _ in range(5):
            _, data, _ = await far.rtp.receive()
            clear = peer_keys.unprotect(data)
            assert clear is not None and clear[12:] not in data
            packet = RtpPacket.parse(clear)
            payloads.append(packet.payload)
            ssrcs.add(packet.ssrc)
        assert b"".join(payloads) == codec("PCMU").encode(sound)
        (ssrc,) = ssrcs
    _, data, _ = await far.rtcp.receive()
    clear = peer_keys.unprotect_rtcp(data)
    assert clear is not None
    kinds = [p.packet_type for p in rtcp.parse_compound(clear)]
    assert kinds == [rtcp.SR, rtcp.SDES, rtcp.BYE]
    assert rtcp.SenderInfo.parse(rtcp.parse_compound(clear)[0]).ssrc == ssrc


async def test_sender_reports_every_rtcp_interval(ports: PortRange, far: Far) -> None:
    async with await opened(ports, rtcp_interval=0.1) as stream:
        stream.start(session(far.rtp))
        await stream.play(tone(0.3))
        first = [RtpPacket.parse((await far.rtp.receive())[1]) for _ in range(15)]
        at, data, _ = await far.rtcp.receive()
        later_at, later, _ = await far.rtcp.receive()
    assert 0.08 <= later_at - at <= 0.2  # every rtcp_interval (RFC 3550 §6.2)
    packets = rtcp.parse_compound(data)
    assert [p.packet_type for p in packets] == [rtcp.SR, rtcp.SDES]
    info = rtcp.SenderInfo.parse(packets[0])
    assert info.ssrc == first[0].ssrc
    assert 1 <= info.packets <= 15 and info.octets == 160 * info.packets
    # the SR's RTP time is "now" on the packets' clock (RFC 3550 §6.4.1)
    last_sent = first[info.packets - 1].timestamp
    assert 0 <= (info.rtp_timestamp - last_sent) % 2**32 <= 2 * 160
    assert rtcp.parse_compound(later)[0].packet_type in (rtcp.SR, rtcp.RR)


async def test_hold_stops_sending_but_keeps_the_clock(ports: PortRange, far: Far) -> None:
    async with await opened(ports) as stream:
        stream.start(session(far.rtp))
        await stream.play(tone(0.06))
        # the peer holds (its sendonly, our recvonly: RFC 3264 §8.4)
        stream.update(session(far.rtp, direction="recvonly"))
        assert await stream.play(tone(0.1)) == pytest.approx(0.1)  # in time, but silent
        assert stream.stats.packets_sent == 3
        stream.update(session(far.rtp, direction="sendrecv"))
        await stream.play(tone(0.06))
        rtp = [p for _, p in await rtp_packets(far.rtp, 6)]
    assert [(p.sequence - rtp[0].sequence) % 65536 for p in rtp] == list(range(6))
    gap = (rtp[3].timestamp - rtp[2].timestamp) % 2**32
    assert gap >= 6 * 160  # the five held packets' time went by on the RTP clock
    assert [p.marker for p in rtp] == [True, False, False, True, False, False]


async def test_the_first_packet_after_a_hold_mid_sound_is_marked(
    ports: PortRange, far: Far
) -> None:
    async with await opened(ports, rtcp_interval=0.05) as stream:
        stream.start(session(far.rtp))
        playing = asyncio.create_task(stream.play(tone(10)))
        _, data, _ = await far.rtp.receive()
        stream.update(session(far.rtp, direction="inactive"))
        before = stream.stats.packets_sent
        for _ in range(2):  # two reports later, at least two packet times went by on hold
            await far.rtcp.receive()
        assert stream.stats.packets_sent == before
        stream.update(session(far.rtp, direction="sendrecv"))
        while not (packet := RtpPacket.parse((await far.rtp.receive())[1])).marker:
            pass
        playing.cancel()
    held = (packet.timestamp - RtpPacket.parse(data).timestamp) % 2**32 // 160
    assert held >= before + 2  # the clock ran on through the hold


async def test_rtcp_goes_to_where_the_peers_rtcp_comes_from(ports: PortRange, far: Far) -> None:
    elsewhere = await Peer.open()
    try:
        async with await opened(ports, rtcp_interval=0.05) as stream:
            stream.start(session(far.rtp))
            await far.rtcp.receive()
            elsewhere.send(rtcp.receiver_report(5), ("127.0.0.1", stream.port + 1))
            far.rtp.send(b"\x80garbage", ("127.0.0.1", stream.port + 1))  # not RTCP: ignored
            _, data, source = await elsewhere.receive()
            assert source == ("127.0.0.1", stream.port + 1)
            assert rtcp.parse_compound(data)[0].packet_type == rtcp.RR
    finally:
        elsewhere.close()


async def test_update_moves_the_destination(ports: PortRange, far: Far) -> None:
    other = await Peer.open()
    try:
        async with await opened(ports) as stream:
            stream.start(session(far.rtp))
            await stream.play(tone(0.02))
            stream.update(session(other))
            await stream.play(tone(0.02))
            assert (await far.rtp.receive())[2][1] == stream.port
            assert (await other.receive())[2][1] == stream.port
    finally:
        other.close()


async def test_a_codec_change_ends_the_sound_playing_and_applies_to_the_next(
    ports: PortRange, far: Far
) -> None:
    async with await opened(ports) as stream:
        stream.start(session(far.rtp))
        playing = asyncio.create_task(stream.play(tone(10)))
        _, data, _ = await far.rtp.receive()
        assert RtpPacket.parse(data).payload_type == 0
        stream.update(session(far.rtp, payload_type=8, codec="PCMA"))
        assert await asyncio.wait_for(playing, 1) < 1
        sound = tone(0.04)
        await stream.play(sound)
        while (packet := RtpPacket.parse((await far.rtp.receive())[1])).payload_type == 0:
            pass
    assert packet.marker
    assert packet.payload == codec("PCMA").encode(sound)[:160]


# --- everything closed, whatever way the stream ends ------------------------------------------


async def assert_all_released(ports: PortRange, port: int, fds: int) -> None:
    assert ports.in_use == frozenset()
    assert open_fds() == fds
    assert can_bind(port) and can_bind(port + 1)


async def test_close_releases_everything_and_is_idempotent(ports: PortRange, far: Far) -> None:
    fds = open_fds()
    stream = await opened(ports)
    assert open_fds() == fds + 2
    stream.start(session(far.rtp))
    await stream.close()
    await stream.close()
    await assert_all_released(ports, stream.port, fds)
    with pytest.raises(RuntimeError):
        stream.start(session(far.rtp))


async def test_an_exception_in_play_leaves_nothing_open(ports: PortRange, far: Far) -> None:
    class Unreadable:
        def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
            raise OSError("the clip vanished")

    fds = open_fds()
    with pytest.raises(OSError, match="vanished"):
        async with await opened(ports) as stream:
            stream.start(session(far.rtp))
            await stream.play(Unreadable())  # type: ignore[arg-type]
    await assert_all_released(ports, stream.port, fds)


async def test_cancelling_play_leaves_nothing_open(ports: PortRange, far: Far) -> None:
    fds = open_fds()
    started = asyncio.Event()
    streams: list[AudioStream] = []

    async def call() -> None:
        async with await opened(ports) as stream:
            streams.append(stream)
            stream.start(session(far.rtp))
            started.set()
            await stream.play(tone(10))

    task = asyncio.create_task(call())
    await asyncio.wait_for(started.wait(), 5)
    await far.rtp.receive()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_all_released(ports, streams[0].port, fds)
    _, bye, _ = await far.rtcp.receive()
    assert rtcp.parse_compound(bye)[-1].packet_type == rtcp.BYE


async def test_closing_mid_play_ends_the_play(ports: PortRange, far: Far) -> None:
    fds = open_fds()
    stream = await opened(ports)
    stream.start(session(far.rtp))
    playing = asyncio.create_task(stream.play(tone(10)))
    await far.rtp.receive()
    await stream.close()
    assert 0 < await asyncio.wait_for(playing, 1) < 1
    await assert_all_released(ports, stream.port, fds)
