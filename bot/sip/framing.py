"""Cutting a byte stream (TCP, TLS) into SIP messages (RFC 3261 §18.3) and keep-alives
(RFC 5626 §3.5.1: a double-CRLF "ping" is answered with a single-CRLF "pong")."""

from __future__ import annotations

import enum

from bot.sip.errors import SipParseError
from bot.sip.head import content_length, find_head_end, read_header_block
from bot.sip.layer import MAX_MESSAGE_SIZE
from bot.sip.message import Message, parse_message

MAX_HEADER_BYTES = 16 * 1024
"""Largest header block accepted on a stream, in octets; real SIP headers stay under 4 KiB."""
MAX_BODY_BYTES = MAX_MESSAGE_SIZE
"""Largest body accepted on a stream, in octets: no more than the transaction layer accepts
in a whole message (it answers anything larger with 413), so nothing larger is buffered."""


class KeepAlive(enum.Enum):
    PING = b"\r\n\r\n"
    PONG = b"\r\n"


class StreamFramer:
    """Feed bytes, get whole messages (as bytes) and keep-alives out.

    On a stream, Content-Length is mandatory (§18.3). It is read with the parser's own header
    rules (:mod:`bot.sip.head`), so both agree where every message ends. A header block or body
    past the caps (413), or a Content-Length that is not a number or is given more than once
    (400), is a :class:`SipParseError` after which the connection must be closed: its framing
    can no longer be trusted.
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
            # any other CR or LF before a start line is ignored, as the parser ignores it
            # (RFC 3261 §7.5): the header block is then read from the same first byte by both
            stray = len(buf) - len(buf.lstrip(b"\r\n"))
            if stray:
                if stray == len(buf) and buf.endswith(b"\r"):
                    return None  # wait: this may be the start of a CRLF
                del buf[:stray]
                if not buf:
                    return None
            bounds = find_head_end(buf, datagram=False)
            if bounds is None:
                if len(buf) > self._max_header:
                    raise SipParseError("header block too large", status=413)
                return None
            end, body_start = bounds
            if end > self._max_header:
                raise SipParseError("header block too large", status=413)
            try:
                length = _content_length(bytes(buf[:end]))
            except SipParseError as exc:
                exc.partial = _partial(bytes(buf[:body_start]))
                raise
            if length > self._max_body:
                partial = _partial(bytes(buf[:body_start]))
                raise SipParseError("body too large", status=413, partial=partial)
            self._need = body_start + length
        if len(buf) < self._need:
            return None
        message = bytes(buf[: self._need])
        del buf[: self._need]
        self._need = None
        return message


def _partial(head: bytes) -> Message | None:
    """What the parser makes of a header block alone: enough to answer it (§8.2.6.2)."""
    try:
        return parse_message(head, datagram=False)
    except SipParseError as exc:  # expected: the body is missing, or the framing is bad
        return exc.partial


def _content_length(head: bytes) -> int:
    """What Content-Length the parser will read in ``head``, with its own header rules
    (:mod:`bot.sip.head`); 0 when there is none. Several Content-Length headers, or one that
    is not a number, leave the end of the message unknowable: 400, and the connection closes
    (RFC 3261 §18.3, RFC 4475 §3.3.9)."""
    found: int | None = None
    _, rows, _ = read_header_block(head)
    for row in rows:
        if row[0] != "content-length":
            continue
        if found is not None:
            raise SipParseError("more than one Content-Length header on a stream", status=400)
        found = content_length(row[2])
        if found is None:
            raise SipParseError(f"bad Content-Length {row[2]!r} on a stream", status=400)
    return found or 0
