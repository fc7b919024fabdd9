"""The RTP packetiser (RFC 3550 §5.1): sequence and timestamp from random values, wrapping,
SSRC, marker; parsing what peers send."""

from __future__ import annotations

import struct

import pytest

from bot.media.rtp import Packetiser, RtpPacket


def test_sequence_and_timestamp_wrap_around() -> None:
    packetiser = Packetiser(0, 160, ssrc=0x1234, sequence=65534, timestamp=2**32 - 200)
    packets = [packetiser.next(b"x") for _ in range(4)]
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets] == [2**32 - 200, 2**32 - 40, 120, 280]
    assert {p.ssrc for p in packets} == {0x1234}


def test_marker_only_where_asked_and_on_the_wire() -> None:
    packetiser = Packetiser(8, 160)
    first, second = packetiser.next(b"a", marker=True), packetiser.next(b"b")
    assert first.to_bytes()[1] == 0x80 | 8
    assert second.to_bytes()[1] == 8
    assert RtpPacket.parse(first.to_bytes()).marker
    assert not RtpPacket.parse(second.to_bytes()).marker


def test_initial_values_are_random_and_the_ssrc_stays() -> None:
    a, b = Packetiser(0, 160), Packetiser(0, 160)
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)
    packets = [a.next(b"") for _ in range(3)]
    assert {p.ssrc for p in packets} == {a.ssrc}


def test_skip_moves_the_timestamp_but_not_the_sequence() -> None:
    packetiser = Packetiser(0, 160, sequence=10, timestamp=1000)
    packetiser.next(b"x")
    packetiser.skip(3)
    after = packetiser.next(b"y")
    assert (after.sequence, after.timestamp) == (11, 1000 + 4 * 160)
    assert (packetiser.packets, packetiser.octets) == (2, 2)


def test_header_layout_is_rfc3550() -> None:
    packet = RtpPacket(
        payload_type=0, sequence=0x0102, timestamp=0x03040506, ssrc=0x0708090A, payload=b"\xff\xff"
    )
    assert packet.to_bytes() == bytes.fromhex("80000102030405060708090a") + b"\xff\xff"


def test_parse_reads_csrcs_extension_and_padding() -> None:
    data = (
        bytes([0x80 | 0x20 | 0x10 | 2, 0x80 | 9])
        + struct.pack("!HII", 7, 8, 9)
        + struct.pack("!II", 11, 12)
        + struct.pack("!HH", 0xBEDE, 1)
        + b"abcd"
        + b"payload"
        + b"\0\0\x03"
    )
    packet = RtpPacket.parse(data)
    assert packet.csrcs == (11, 12)
    assert packet.extension == (0xBEDE, b"abcd")
    assert packet.payload == b"payload"
    assert packet.marker and packet.payload_type == 9
    assert RtpPacket.parse(packet.to_bytes()).extension == (0xBEDE, b"abcd")


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x00",  # shorter than the header
        bytes([0x40]) + bytes(11),  # version 1
        bytes([0x8F]) + bytes(11),  # 15 CSRCs announced, none there
        bytes([0xA0]) + bytes(10) + b"\x40",  # padding longer than the packet
        bytes([0x90]) + bytes(11) + b"\0\0\0\x09",  # extension of 9 words, none there
    ],
)
def test_parse_refuses_what_is_not_rtp(data: bytes) -> None:
    with pytest.raises(ValueError):
        RtpPacket.parse(data)
