"""A small RIFF/WAVE reader: any rate, 8/16/24/32-bit integer PCM, 32/64-bit IEEE float
(``WAVE_FORMAT_IEEE_FLOAT``) and ``WAVE_FORMAT_EXTENSIBLE``, any number of channels mixed to mono.

The standard library's ``wave`` reads integer PCM only; this reads what sound editors save.
Layout: Microsoft "Multimedia Programming Interface and Data Specifications 1.0" (RIFF chunks,
``fmt `` and ``data``, a pad byte after an odd-sized chunk) and "Multiple channel audio data and
WAVE files" (WAVEFORMATEXTENSIBLE: the real format is the first two bytes of ``SubFormat``).
A ``data`` chunk whose size runs past the end of the file is read up to the end: streamed WAV
(espeak-ng ``--stdout``) cannot know its size when it writes the header.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bot.sounds.errors import SoundError
from bot.sounds.sound import Sound

MAX_WAV_BYTES = 32 * 1024 * 1024
"""Files larger than this are refused unread: 32 MiB is three minutes of 44.1 kHz stereo 16-bit,
beyond any announcement, and bounds the memory one ``play`` takes (about four times the file
while it is decoded)."""

PCM = 0x0001
IEEE_FLOAT = 0x0003
EXTENSIBLE = 0xFFFE
MIN_RATE, MAX_RATE = 1000, 768_000
"""Sample rates outside this range are not audio anyone records."""
MAX_CHANNELS = 64

_INTEGER_WIDTHS = (8, 16, 24, 32)
_FLOAT_WIDTHS = (32, 64)
_SAVE_AS = "save it as 16-bit PCM WAV and try again"


def read_wav(path: Path, *, limit: int = MAX_WAV_BYTES) -> Sound:
    """The sound in the WAV file ``path``, mixed to mono; ``SoundError`` (naming the file, not
    the folder) when it is missing, too large or not a WAV file the bot can play."""
    name = path.name
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise SoundError(f"There is no file '{name}'.") from None
    except OSError as exc:
        raise SoundError(f"'{name}' cannot be read ({exc.strerror}).") from None
    if len(data) > limit:
        raise SoundError(
            f"'{name}' is larger than {limit / 2**20:g} MiB: "
            "shorten it or save it at a lower rate (8 kHz mono is enough for a call)."
        )
    return parse_wav(data, name)


def parse_wav(data: bytes, name: str) -> Sound:
    """The sound in the WAV bytes ``data`` (``name`` is for the error sentences)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SoundError(f"'{name}' is not a WAV file: {_SAVE_AS}.")
    fmt, payload = _chunks(data, name)
    tag, channels, rate, block, bits = _format(fmt, name)
    frames = len(payload) // block
    if frames == 0:
        raise SoundError(f"'{name}' holds no sound: record it again.")
    width = block // channels
    raw = np.frombuffer(payload, dtype=np.uint8, count=frames * block)
    raw = raw.reshape(frames, channels, width)
    mono = _decode(raw, tag, width).mean(axis=1, dtype=np.float32)
    # full scale [-1, 1) to int16; a float file may go past full scale: clipped
    return Sound(
        np.clip(np.round(mono * np.float32(32768.0)), -32768, 32767).astype(np.int16), rate
    )


def _chunks(data: bytes, name: str) -> tuple[memoryview, memoryview]:
    """The ``fmt `` and ``data`` chunks, in whichever order they come, other chunks skipped
    (views: the samples are not copied)."""
    view = memoryview(data)
    fmt: memoryview | None = None
    payload: memoryview | None = None
    at = 12
    while at + 8 <= len(data) and (fmt is None or payload is None):
        kind, size = struct.unpack_from("<4sI", data, at)
        body = view[at + 8 : at + 8 + size]  # up to the end of the file when it is short
        if kind == b"fmt ":
            fmt = body
        elif kind == b"data":
            payload = body
        at += 8 + size + (size & 1)  # RIFF: a pad byte follows an odd-sized chunk
    if fmt is None or payload is None:
        missing = "format" if fmt is None else "sound data"
        raise SoundError(f"'{name}' is a damaged WAV file (no {missing} chunk): {_SAVE_AS}.")
    return fmt, payload


def _format(fmt: memoryview, name: str) -> tuple[int, int, int, int, int]:
    """(format tag, channels, rate, block size, bits per sample), checked."""
    if len(fmt) < 16:
        raise SoundError(f"'{name}' is a damaged WAV file (short format chunk): {_SAVE_AS}.")
    tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE:
        if len(fmt) < 40:
            raise SoundError(f"'{name}' is a damaged WAV file (short format chunk): {_SAVE_AS}.")
        (tag,) = struct.unpack_from("<H", fmt, 24)  # SubFormat GUID: xxxx0000-0000-0010-8000-...
    widths = {PCM: _INTEGER_WIDTHS, IEEE_FLOAT: _FLOAT_WIDTHS}.get(tag)
    if widths is None:
        raise SoundError(f"'{name}' is a WAV file in a format the bot cannot play: {_SAVE_AS}.")
    if not 1 <= channels <= MAX_CHANNELS or not MIN_RATE <= rate <= MAX_RATE:
        raise SoundError(
            f"'{name}' says it has {channels} channels at {rate} Hz, which is not playable "
            f"audio: {_SAVE_AS}."
        )
    width = block // channels
    if block % channels or width * 8 not in widths or bits > width * 8:
        raise SoundError(
            f"'{name}' has {bits}-bit samples the bot cannot play (it plays 8, 16, 24 and 32-bit "
            f"PCM and 32-bit float): {_SAVE_AS}."
        )
    return tag, channels, rate, block, bits


def _decode(raw: NDArray[np.uint8], tag: int, width: int) -> NDArray[np.float32]:
    """Samples (frames x channels x bytes, little-endian) as floats in [-1, 1). Single precision
    holds 24 bits exactly, more than the 16 kept, at half the memory of double."""
    if tag == IEEE_FLOAT:
        kind = np.dtype("<f4") if width == 4 else np.dtype("<f8")
        return raw.view(kind)[..., 0].astype(np.float32)
    if width == 1:  # 8-bit WAV is unsigned, 128 is silence
        return (raw[..., 0].astype(np.float32) - 128.0) / 128.0
    if width == 3:  # sign-extended by placing the bytes at the top of a 32-bit word
        words = np.zeros((*raw.shape[:2], 4), dtype=np.uint8)
        words[..., 1:] = raw
        raw, width = words, 4
    ints = raw.view(np.dtype(f"<i{width}"))[..., 0]
    return ints.astype(np.float32) / np.float32(2.0 ** (8 * width - 1))
