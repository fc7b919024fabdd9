"""Cutting a byte stream (TCP, TLS) into SIP messages (RFC 3261 §18.3) and keep-alives
(RFC 5626 §3.5.1: a double-CRLF "ping" is answered with a single-CRLF "pong")."""

from __future__ import annotations

import enum

from bot.sip.errors import SipParseError
from bot.sip.message import Message, parse_message

MAX_HEADER_BYTES = 16 * 1024
"""Largest header block accepted on a stream, in octets; real SIP headers stay under 4 KiB."""
MAX_BODY_BYTES = 1024 * 1024
"""Largest body accepted on a stream, in octets: generous for SDP, C3P and conference-info."""


class KeepAlive(enum.Enum):
    PING = b"\r\n\r\n"
    PONG = b"\r\n"


class StreamFramer:
    """Feed bytes, get whole messages (as bytes) and keep-alives out.

    On a stream, Content-Length is mandatory (§18.3); a header block or body past the caps, or a
    Content-Length that is not a number, is a :class:`SipParseError` after which the connection
    must be closed: its framing can no longer be trusted.
    """

    def __init__(
        self,
        *,
        outbound: bool = False,
        max_header: int = MAX_HEADER_BYTES,
        max_body: int = MAX_BODY_BYTES,
    ):
        self._outbound = outbound
        """We opened the flow: we send pings, so a lone CRLF is the pong (RFC 5626 §4.4.1);
        on a flow the peer opened, a CRLF may be the first half of its ping."""
        self._buffer = bytearray()
        self._max_header = max_header
        self._max_body = max_body
        self._need: int | None = None  # total length of the message being received

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        self._buffer += data
        out: list[bytes | KeepAlive] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> bytes | KeepAlive | None:
        buf = self._buffer
        if self._need is None:
            # keep-alives and stray CRLFs between messages (RFC 5626 §3.5.1, RFC 3261 §7.5)
            if buf.startswith(b"\r\n\r\n"):
                del buf[:4]
                return KeepAlive.PING
            if buf.startswith(b"\r\n"):
                if len(buf) < 4 and not self._outbound and not bytes(buf).strip(b"\r\n"):
                    return None  # wait: this may be the first half of a ping
                del buf[:2]
                return KeepAlive.PONG
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self._max_header:
                    raise SipParseError("header block too large", status=413)
                return None
            if end > self._max_header:
                raise SipParseError("header block too large", status=413)
            length = _content_length(bytes(buf[:end]))
            if length > self._max_body:
                partial: Message | None
                try:
                    partial = parse_message(bytes(buf[: end + 4]), datagram=False)
                except SipParseError as exc:  # expected: the body is missing
                    partial = exc.partial
                raise SipParseError("body too large", status=413, partial=partial)
            self._need = end + 4 + length
        if len(buf) < self._need:
            return None
        message = bytes(buf[: self._need])
        del buf[: self._need]
        self._need = None
        return message


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit() or len(text) > 10:
                raise SipParseError(f"bad Content-Length {text!r} on a stream", status=400)
            return int(text)
    return 0
