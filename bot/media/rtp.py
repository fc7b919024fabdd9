"""RTP data packets (RFC 3550 §5.1), sans-IO: parse, serialise, and a packetiser that numbers
what one source sends."""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

VERSION = 2
HEADER = struct.Struct("!BBHII")
SEQUENCE_MODULO = 1 << 16
TIMESTAMP_MODULO = 1 << 32


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP data packet (RFC 3550 §5.1). Header extensions are kept opaque."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    """(profile-defined 16 bits, extension words) of RFC 3550 §5.3.1."""

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """The packet in ``data``; ValueError when it is not RTP version 2 or is truncated."""
        if len(data) < HEADER.size:
            raise ValueError("RTP packet shorter than its 12-octet header")
        first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
        if first >> 6 != VERSION:
            raise ValueError(f"RTP version {first >> 6}, not 2")
        end = len(data)
        if first & 0x20:  # P: the last octet counts the padding octets, itself included
            padding = data[-1]
            if padding == 0 or padding > end - HEADER.size:
                raise ValueError("bad RTP padding length")
            end -= padding
        offset = HEADER.size + 4 * (first & 0x0F)
        if offset > end:
            raise ValueError("RTP packet shorter than its CSRC list")
        csrcs = struct.unpack_from(f"!{first & 0x0F}I", data, HEADER.size)
        extension = None
        if first & 0x10:  # X: RFC 3550 §5.3.1
            if offset + 4 > end:
                raise ValueError("RTP packet shorter than its header extension")
            profile, words = struct.unpack_from("!HH", data, offset)
            if offset + 4 + 4 * words > end:
                raise ValueError("RTP packet shorter than its header extension")
            extension = (profile, bytes(data[offset + 4 : offset + 4 + 4 * words]))
            offset += 4 + 4 * words
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
        )

    def to_bytes(self) -> bytes:
        first = VERSION << 6 | (0x10 if self.extension else 0) | len(self.csrcs)
        second = (0x80 if self.marker else 0) | self.payload_type
        head = HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)
        head += struct.pack(f"!{len(self.csrcs)}I", *self.csrcs)
        if self.extension:
            profile, words = self.extension
            head += struct.pack("!HH", profile, len(words) // 4) + words
        return head + self.payload


class Packetiser:
    """Numbers the packets of one synchronisation source (RFC 3550 §5.1): the sequence number
    goes up by one per packet sent, the timestamp by the samples each packet carries, both from
    random initial values, as is the SSRC (§8.1)."""

    def __init__(
        self,
        payload_type: int,
        samples_per_packet: int,
        *,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.payload_type = payload_type
        self.samples_per_packet = samples_per_packet
        """RTP timestamp units per packet (clock rate × ptime)."""
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.sequence = secrets.randbits(16) if sequence is None else sequence
        """The sequence number of the next packet."""
        self.timestamp = secrets.randbits(32) if timestamp is None else timestamp
        """The timestamp of the next packet."""
        self.packets = 0
        self.octets = 0
        """Packets and payload octets sent so far (the RTCP SR counts, RFC 3550 §6.4.1)."""

    def next(self, payload: bytes, *, marker: bool = False) -> RtpPacket:
        """The next packet; ``marker`` on the first packet of a talk spurt (RFC 3551 §4.1)."""
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence=self.sequence,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
        self.sequence = (self.sequence + 1) % SEQUENCE_MODULO
        self.skip()
        self.packets += 1
        self.octets += len(payload)
        return packet

    def skip(self, packets: int = 1) -> None:
        """Let the clock run for ``packets`` packet times without sending (silence, hold): the
        timestamp advances, the sequence number does not (RFC 3550 §5.1)."""
        self.timestamp = (self.timestamp + packets * self.samples_per_packet) % TIMESTAMP_MODULO
