"""ITU-T G.711 µ-law and A-law, vectorised with numpy.

The companding follows the ITU-T G.191 Software Tool Library reference (``g711.c``:
``ulaw_compress``/``ulaw_expand``, ``alaw_compress``/``alaw_expand``), which is bit-exact with
the tables of ITU-T G.711 (11/88) Tables 1a/1b (A-law) and 2a/2b (µ-law). The 16-bit linear
input is treated as G.711's 14-bit (µ-law) or 13-bit (A-law) range, the low bits truncated.
Both directions are table look-ups: 65,536 entries to encode, 256 to decode, built once."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def _linear_domain() -> NDArray[np.int32]:
    """Every int16 value, indexed by its uint16 bit pattern (so ``table[pcm.view(uint16)]``)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _ulaw_compress(x: NDArray[np.int32]) -> NDArray[np.uint8]:
    # G.191 ulaw_compress: magnitude in 14 bits (one's complement for negatives), biased by 33
    magnitude = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    magnitude = np.minimum(magnitude, 0x1FFF)
    segment = np.ones_like(magnitude)
    rest = magnitude >> 6
    for _ in range(8):  # segno++ while (i >>= 1) != 0
        segment += rest != 0
        rest >>= 1
    high = 8 - segment
    low = 0x0F - ((magnitude >> segment) & 0x0F)
    code = (high << 4) | low
    signed: NDArray[np.int32] = np.where(x >= 0, code | 0x80, code)
    return signed.astype(np.uint8)


def _ulaw_expand(code: NDArray[np.int32]) -> NDArray[np.int16]:
    # G.191 ulaw_expand
    sign = np.where(code < 0x80, -1, 1)
    inverted = ~code
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    value: NDArray[np.int32] = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    return (sign * value).astype(np.int16)


def _alaw_compress(x: NDArray[np.int32]) -> NDArray[np.uint8]:
    # G.191 alaw_compress: 12-bit magnitude (one's complement for negatives)
    ix = np.where(x < 0, (~x) >> 4, x >> 4)
    exponent = np.zeros_like(ix)
    big = ix > 15
    shifted = ix.copy()
    exponent[big] = 1
    for _ in range(7):  # while (ix > 16 + 15) { ix >>= 1; iexp++; }
        more = big & (shifted > 31)
        shifted = np.where(more, shifted >> 1, shifted)
        exponent += more
    code = np.where(big, shifted - 16 + (exponent << 4), ix)
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)


def _alaw_expand(code: NDArray[np.int32]) -> NDArray[np.int16]:
    # G.191 alaw_expand
    ix = (code ^ 0x55) & 0x7F
    exponent = ix >> 4
    mantissa = ix & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    mantissa = (mantissa << 4) + 8
    mantissa = np.where(exponent > 1, mantissa << np.maximum(exponent - 1, 0), mantissa)
    return np.where(code > 127, mantissa, -mantissa).astype(np.int16)


_CODES = np.arange(256, dtype=np.int32)
_ULAW_ENCODE = _ulaw_compress(_linear_domain())
_ALAW_ENCODE = _alaw_compress(_linear_domain())
_ULAW_DECODE = _ulaw_expand(_CODES)
_ALAW_DECODE = _alaw_expand(_CODES)


def _indices(pcm: NDArray[np.int16]) -> NDArray[np.uint16]:
    return np.ascontiguousarray(pcm, dtype=np.int16).view(np.uint16)


def ulaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """µ-law octets of 16-bit linear samples (ITU-T G.711 Table 2)."""
    return _ULAW_ENCODE[_indices(pcm)].tobytes()


def ulaw_decode(data: bytes) -> NDArray[np.int16]:
    """16-bit linear samples of µ-law octets."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """A-law octets of 16-bit linear samples (ITU-T G.711 Table 1; even bits inverted)."""
    return _ALAW_ENCODE[_indices(pcm)].tobytes()


def alaw_decode(data: bytes) -> NDArray[np.int16]:
    """16-bit linear samples of A-law octets."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]
