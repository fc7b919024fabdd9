"""Writes WAV files the way sound editors save them, for the reader's tests: integer PCM of
8/16/24/32 bits, IEEE float, WAVE_FORMAT_EXTENSIBLE, any channel count, with an odd-sized chunk
before ``fmt `` (the RIFF pad byte) as some editors add metadata there."""

from __future__ import annotations

import struct
from typing import Literal

import numpy as np
from numpy.typing import NDArray

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
"""KSDATAFORMAT_SUBTYPE_*: the format tag, then these 14 bytes."""


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> NDArray[np.float64]:
    t = np.arange(round(seconds * rate)) / rate
    signal: NDArray[np.float64] = amplitude * np.sin(2 * np.pi * freq * t)
    return signal


def encode(frames: NDArray[np.float64], kind: Literal["pcm", "float"], bits: int) -> bytes:
    """``frames`` (samples x channels, full scale ±1) as interleaved little-endian samples."""
    if kind == "float":
        return frames.astype("<f4" if bits == 32 else "<f8").tobytes()
    half = 2 ** (bits - 1)
    ints = np.clip(np.round(frames * half), -half, half - 1).astype(np.int64)
    if bits == 8:
        return (ints + 128).astype(np.uint8).tobytes()
    raw = ints.astype("<i8").view(np.uint8).reshape(*frames.shape, 8)
    return raw[..., : bits // 8].tobytes()


def wav_bytes(
    frames: NDArray[np.float64],
    rate: int,
    *,
    kind: Literal["pcm", "float"] = "pcm",
    bits: int = 16,
    extensible: bool = False,
    tag: int | None = None,
    data_size: int | None = None,
) -> bytes:
    """A whole WAV file; ``tag`` overrides the format tag (to write one the bot cannot play),
    ``data_size`` the data chunk's declared size (streamed files declare more than they hold)."""
    if frames.ndim == 1:
        frames = frames[:, None]
    channels = frames.shape[1]
    data = encode(frames, kind, bits)
    block = channels * bits // 8
    format_tag = PCM if kind == "pcm" else IEEE_FLOAT
    head = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block, block, bits)
    if extensible:
        mask = (1 << channels) - 1
        fmt = struct.pack("<HHIIHH", EXTENSIBLE, channels, rate, rate * block, block, bits)
        fmt += struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", format_tag) + GUID_TAIL
    elif tag is not None:
        fmt = struct.pack("<H", tag) + head[2:]
    else:
        fmt = head if kind == "pcm" else head + struct.pack("<H", 0)
    chunks = chunk(b"LIST", b"INFOISFT\x03\x00\x00\x00ed\x00")  # odd size: a pad byte follows
    chunks += chunk(b"fmt ", fmt)
    if kind == "float":
        chunks += chunk(b"fact", struct.pack("<I", len(frames)))
    chunks += chunk(b"data", data, declared=data_size)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def chunk(kind: bytes, body: bytes, *, declared: int | None = None) -> bytes:
    size = len(body) if declared is None else declared
    return kind + struct.pack("<I", size) + body + (b"\x00" if len(body) % 2 else b"")
