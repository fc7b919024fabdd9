"""Content-Encoding (RFC 3261 §20.12): deflate and gzip bodies, inflated with a hard limit so
that a compression bomb costs at most that much memory."""

from __future__ import annotations

import zlib

ENCODINGS = frozenset({"identity", "deflate", "gzip"})
MAX_INFLATED = 64 * 1024
"""Bytes an IM body may inflate to; a bigger one is refused with 413."""


class BodyTooLarge(ValueError):
    """Inflates beyond MAX_INFLATED: answer 413."""


class BadEncoding(ValueError):
    """Not what its Content-Encoding says, or an encoding we do not undo: answer 415."""


def decode(body: bytes, encodings: list[str], limit: int = MAX_INFLATED) -> bytes:
    """``body`` with its encodings undone, last applied first."""
    for encoding in reversed([e.strip().lower() for e in encodings if e.strip()]):
        if encoding == "identity":
            continue
        if encoding == "gzip":
            body = _inflate(body, [31], limit)
        elif encoding == "deflate":
            # "deflate" is the zlib format (RFC 1950); some senders send raw deflate (RFC 1951)
            body = _inflate(body, [15, -15], limit)
        else:
            raise BadEncoding(encoding)
    return body


def _inflate(body: bytes, window_bits: list[int], limit: int) -> bytes:
    for wbits in window_bits:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(f"inflates beyond {limit} bytes")
        return out
    raise BadEncoding("not valid compressed data")
