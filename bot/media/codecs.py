"""The audio codecs the bot sends: G.711 µ-law/A-law and G.722 (RFC 3551 §4.5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from G722 import G722
from numpy.typing import NDArray

from bot.media import g711

Encoder = Callable[[NDArray[np.int16]], bytes]
BIT_RATE = 64000
"""Bits per second of every codec here: G.711, and G.722 mode 1 (RFC 3551 §4.5.2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """One RTP audio payload format (RFC 3551 §4.5, Table 4)."""

    name: str
    payload_type: int
    """The static payload type of RFC 3551 Table 4 (PCMU 0, PCMA 8, G722 9)."""
    clock_rate: int
    """RTP timestamp units per second: 8000 for all three. RFC 3551 §4.5.2: G.722's RTP clock
    is 8000 Hz "for historical reasons", though it samples at 16000 Hz."""
    sample_rate: int
    """Samples per second of the audio itself (16000 for G.722)."""
    new_encoder: Callable[[], Encoder]
    """A fresh encoder. G.722 is adaptive (ADPCM): one encoder must run through a whole sound,
    not one per packet."""
    decoder: Callable[[bytes], NDArray[np.int16]]

    def encode(self, pcm: NDArray[np.int16]) -> bytes:
        """Mono samples at ``sample_rate`` to payload octets."""
        return self.new_encoder()(pcm)

    def payloads(self, pcm: NDArray[np.int16], ptime: int) -> Iterator[bytes]:
        """The payloads of ``ptime`` ms packets of ``pcm``, the last one filled up with silence,
        encoded a second at a time as they are taken (a long sound never holds up the event
        loop, nor the other calls' packets, for long)."""
        frame = self.samples_per_packet(ptime)
        step = self.octets(frame)
        chunk = frame * max(1, 1000 // ptime)
        encoder = self.new_encoder()
        for start in range(0, len(pcm), chunk):
            samples = np.ascontiguousarray(pcm[start : start + chunk], dtype=np.int16)
            if len(samples) % frame:
                samples = np.concatenate(
                    [samples, np.zeros(frame - len(samples) % frame, dtype=np.int16)]
                )
            data = encoder(samples)
            for offset in range(0, len(data), step):
                yield data[offset : offset + step]

    def decode(self, data: bytes) -> NDArray[np.int16]:
        return self.decoder(data)

    def samples_per_packet(self, ptime: int) -> int:
        """Audio samples in ``ptime`` ms of this codec."""
        return self.sample_rate * ptime // 1000

    def timestamp_step(self, ptime: int) -> int:
        """RTP timestamp units in ``ptime`` ms (RFC 3550 §5.1)."""
        return self.clock_rate * ptime // 1000

    def octets(self, samples: int) -> int:
        """Payload octets of ``samples`` samples: all three codecs run at 64 kbit/s (G.711 one
        octet per sample, G.722 one per two 16 kHz samples)."""
        return samples * BIT_RATE // 8 // self.sample_rate


def _g722_encoder() -> Encoder:
    state = G722(16000, BIT_RATE)

    def encode(pcm: NDArray[np.int16]) -> bytes:
        data: bytes = state.encode(np.ascontiguousarray(pcm, dtype=np.int16))
        return data

    return encode


def _g722_decode(data: bytes) -> NDArray[np.int16]:
    return np.asarray(G722(16000, BIT_RATE).decode(data), dtype=np.int16)


_CODECS = {
    "PCMU": Codec(
        name="PCMU",
        payload_type=0,
        clock_rate=8000,
        sample_rate=8000,
        new_encoder=lambda: g711.ulaw_encode,
        decoder=g711.ulaw_decode,
    ),
    "PCMA": Codec(
        name="PCMA",
        payload_type=8,
        clock_rate=8000,
        sample_rate=8000,
        new_encoder=lambda: g711.alaw_encode,
        decoder=g711.alaw_decode,
    ),
    "G722": Codec(
        name="G722",
        payload_type=9,
        clock_rate=8000,
        sample_rate=16000,
        new_encoder=_g722_encoder,
        decoder=_g722_decode,
    ),
}


def codec(name: str) -> Codec:
    """The codec called ``name`` (case-insensitive, as in an SDP ``a=rtpmap``)."""
    try:
        return _CODECS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown audio codec {name!r}") from None
