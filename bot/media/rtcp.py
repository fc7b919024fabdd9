"""RTCP (RFC 3550 §6), sans-IO: the compound packets a sender needs (SR + SDES CNAME, and BYE
when it leaves) and a minimal parser for what comes back."""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 2
SR, RR, SDES, BYE = 200, 201, 202, 203  # RFC 3550 §12.1
CNAME = 1  # SDES item type, RFC 3550 §6.5.1
NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (the NTP epoch) to 1970-01-01 (the Unix epoch)."""


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp of a Unix time (RFC 3550 §4): seconds and a 32-bit fraction."""
    seconds = int(unix_time) + NTP_EPOCH_OFFSET
    fraction = int((unix_time % 1.0) * (1 << 32)) & 0xFFFFFFFF
    return (seconds & 0xFFFFFFFF) << 32 | fraction


def _header(packet_type: int, count: int, body_length: int) -> bytes:
    # RFC 3550 §6.4.1: length in 32-bit words minus one, header included
    return struct.pack("!BBH", VERSION << 6 | count, packet_type, (body_length + 4) // 4 - 1)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def sender_report(
    ssrc: int, *, unix_time: float, rtp_timestamp: int, packets: int, octets: int
) -> bytes:
    """An SR without report blocks (RFC 3550 §6.4.1): we send and do not report on reception."""
    body = struct.pack(
        "!IQIII",
        ssrc,
        ntp_timestamp(unix_time),
        rtp_timestamp & 0xFFFFFFFF,
        packets & 0xFFFFFFFF,
        octets & 0xFFFFFFFF,
    )
    return _header(SR, 0, len(body)) + body


def receiver_report(ssrc: int) -> bytes:
    """An RR without report blocks (RFC 3550 §6.4.2), for an interval in which we sent
    nothing: a compound packet must still begin with SR or RR (§6.1)."""
    body = struct.pack("!I", ssrc)
    return _header(RR, 0, len(body)) + body


def sdes_cname(ssrc: int, cname: str) -> bytes:
    """An SDES packet with one chunk carrying CNAME (RFC 3550 §6.5, §6.5.1)."""
    text = cname.encode()[:255]
    chunk = _padded(struct.pack("!IBB", ssrc, CNAME, len(text)) + text + b"\0")
    return _header(SDES, 1, len(chunk)) + chunk


def bye(ssrc: int, reason: str = "") -> bytes:
    """A BYE for one source (RFC 3550 §6.6), with an optional reason."""
    body = struct.pack("!I", ssrc)
    if reason:
        text = reason.encode()[:255]
        body = _padded(body + bytes([len(text)]) + text)
    return _header(BYE, 1, len(body)) + body


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpPacket:
    """One packet of a compound RTCP packet: its type, count field and body (after the
    4-octet header)."""

    packet_type: int
    count: int
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderInfo:
    """The sender information of an SR (RFC 3550 §6.4.1)."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packets: int
    octets: int

    @classmethod
    def parse(cls, packet: RtcpPacket) -> SenderInfo:
        if packet.packet_type != SR or len(packet.body) < 24:
            raise ValueError("not an RTCP sender report")
        ssrc, ntp, rtp, packets, octets = struct.unpack_from("!IQIII", packet.body)
        return cls(ssrc=ssrc, ntp_timestamp=ntp, rtp_timestamp=rtp, packets=packets, octets=octets)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """The packets of a compound RTCP packet (RFC 3550 §6.1); ValueError when the lengths do
    not add up or the version is not 2."""
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise ValueError("truncated RTCP header")
        first, packet_type, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != VERSION:
            raise ValueError(f"RTCP version {first >> 6}, not 2")
        end = offset + 4 * (words + 1)
        if end > len(data):
            raise ValueError("RTCP length runs past the datagram")
        packets.append(
            RtcpPacket(packet_type=packet_type, count=first & 0x1F, body=data[offset + 4 : end])
        )
        offset = end
    if not packets:
        raise ValueError("empty RTCP packet")
    return packets
