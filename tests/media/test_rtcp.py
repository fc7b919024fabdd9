"""RTCP compound packets (RFC 3550 §6): SR fields, SDES CNAME, BYE, and the parser."""

from __future__ import annotations

import struct

import pytest

from bot.media import rtcp


def test_sender_report_fields() -> None:
    data = rtcp.sender_report(
        0xCAFEBABE, unix_time=1_700_000_000.25, rtp_timestamp=2**32 + 5, packets=150, octets=24000
    )
    assert len(data) == 28
    first, packet_type, length = struct.unpack_from("!BBH", data)
    assert (first >> 6, first & 0x1F, packet_type, length) == (2, 0, 200, 6)
    (packet,) = rtcp.parse_compound(data)
    info = rtcp.SenderInfo.parse(packet)
    assert info.ssrc == 0xCAFEBABE
    # NTP seconds count from 1900 (RFC 3550 §4); a quarter second is 2**30 of the fraction
    assert info.ntp_timestamp >> 32 == 1_700_000_000 + 2_208_988_800
    assert info.ntp_timestamp & 0xFFFFFFFF == 2**30
    assert (info.rtp_timestamp, info.packets, info.octets) == (5, 150, 24000)


def test_compound_with_sdes_and_bye() -> None:
    data = rtcp.receiver_report(7) + rtcp.sdes_cname(7, "sipbot@127.0.0.1") + rtcp.bye(7, "hung up")
    packets = rtcp.parse_compound(data)
    assert [p.packet_type for p in packets] == [rtcp.RR, rtcp.SDES, rtcp.BYE]
    sdes = packets[1].body
    assert struct.unpack_from("!IBB", sdes) == (7, rtcp.CNAME, 16)
    assert sdes[6:22] == b"sipbot@127.0.0.1"
    assert len(sdes) % 4 == 0 and sdes[22] == 0  # null-terminated item list, padded
    assert packets[2].count == 1 and packets[2].body[:4] == struct.pack("!I", 7)
    assert packets[2].body[4:12] == b"\x07hung up"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80\xc8", b"\x40\xc8\x00\x00", b"\x80\xc8\x00\x06" + bytes(8)],
)
def test_parser_refuses_broken_packets(data: bytes) -> None:
    with pytest.raises(ValueError):
        rtcp.parse_compound(data)


def test_sender_info_of_something_else_is_refused() -> None:
    (packet,) = rtcp.parse_compound(rtcp.receiver_report(1))
    with pytest.raises(ValueError):
        rtcp.SenderInfo.parse(packet)
