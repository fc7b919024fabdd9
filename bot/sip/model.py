"""SIP requests and responses as objects: headers, body, typed accessors, serialization
(RFC 3261 §7, §20.14). Parsing lives in bot.sip.parse; building new ones in bot.sip.message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, overload

from bot.sip.errors import SipParseError
from bot.sip.headers import Address, CSeq, Headers, Via
from bot.sip.uri import Uri

_T = TypeVar("_T")
# Header fields that may appear at most once (RFC 3261 §7.3.1: not comma-separated lists).
SINGLE_HEADERS = frozenset(
    {"call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type"}
)
MANDATORY_REQUEST_HEADERS = ("via", "from", "to", "call-id", "cseq")  # RFC 3261 §8.1.1
REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip


class _Parsed(Generic[_T]):
    """A typed header value of a message, parsed from the rows of header ``key`` on first read
    and kept in :attr:`Headers.parsed`, which drops it when the rows of ``key`` change."""

    __slots__ = ("key", "parse")

    def __init__(self, key: str, parse: Callable[[Headers], _T]):
        self.key = key
        self.parse = parse

    @overload
    def __get__(self, message: None, owner: type) -> _Parsed[_T]: ...
    @overload
    def __get__(self, message: Message, owner: type | None = None) -> _T: ...
    def __get__(self, message: Message | None, owner: type | None = None) -> _T | _Parsed[_T]:
        if message is None:
            return self
        headers = message.headers
        try:
            return headers.parsed[self.key]  # type: ignore[return-value]
        except KeyError:
            pass  # not parsed yet: rare, Message.parse_core parses what is read most
        try:
            parsed = self.parse(headers)
        except SipParseError as exc:
            exc.partial = exc.partial or message
            raise
        headers.parsed[self.key] = parsed
        return parsed


class Message:
    """What requests and responses share: headers, body, typed accessors."""

    __slots__ = ("headers", "body")

    def __init__(self, headers: Headers | None = None, body: bytes = b""):
        self.headers = headers if headers is not None else Headers()
        self.body = body

    call_id = _Parsed("call-id", lambda headers: _required(headers, "call-id"))
    cseq = _Parsed("cseq", lambda headers: CSeq.parse(_required(headers, "cseq")))
    vias = _Parsed("via", lambda headers: tuple(map(Via.parse, headers.values("via"))))
    from_ = _Parsed("from", lambda headers: Address.parse(_required(headers, "from")))
    to = _Parsed("to", lambda headers: Address.parse(_required(headers, "to")))

    @property
    def via(self) -> Via:
        """The top Via (RFC 3261 §8.1.1.7, §17.2.3)."""
        vias: tuple[Via, ...] | None = self.headers.parsed.get("via")  # type: ignore[assignment]
        if not vias:  # not parsed yet (or no Via at all)
            vias = self.vias
            if not vias:
                raise SipParseError("missing Via header", partial=self)
        return vias[0]

    def parse_core(self) -> None:
        """Parse now what every transaction and dialog reads of a message (RFC 3261 §17.1.3,
        §17.2.3, §12.2: CSeq, Via, From, To, Call-ID), in that order, with no accessor
        between: the first that does not parse raises; those before it stay parsed."""
        headers = self.headers
        first = headers._first
        parsed = headers.parsed
        try:
            if "cseq" not in parsed:
                parsed["cseq"] = CSeq.parse(first["cseq"])
            if "via" not in parsed:
                value = first["via"]
                if "," in value or len(headers._rows) != len(first):  # maybe more than one
                    parsed["via"] = tuple(map(Via.parse, headers.values("via")))
                else:
                    parsed["via"] = (Via.parse(value),)
            if "from" not in parsed:
                parsed["from"] = Address.parse(first["from"])
            if "to" not in parsed:
                parsed["to"] = Address.parse(first["to"])
            parsed["call-id"] = first["call-id"]
        except KeyError as exc:
            raise SipParseError(f"missing {exc.args[0]} header", partial=self) from None
        except SipParseError as exc:
            exc.partial = exc.partial or self
            raise

    def set_via(self, via: Via) -> None:
        """Make ``via`` the only Via: we originate the request (RFC 3261 §8.1.1.7)."""
        self.headers.put_first("Via", str(via))
        self.headers.parsed["via"] = (via,)

    @property
    def contacts(self) -> list[Address]:
        """Contact values; ``*`` (RFC 3261 §10.2.2) is not an address and is left out."""
        return [Address.parse(v) for v in self.headers.values("contact") if v.strip() != "*"]

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters."""
        value = self.headers._first.get("content-type")
        if value is None:
            return None
        return value.partition(";")[0].strip().lower() or None

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Wire bytes; Content-Length always states the body's length (RFC 3261 §20.14)."""
        lines = [self._start_line()]
        headers = self.headers
        if "content-length" not in headers._first:  # what the bot builds: added last
            for _, name, value in headers._rows:
                lines.append(f"{name}: {value}")
            lines.append(f"Content-Length: {len(self.body)}\r\n\r\n")
            return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body
        length_written = False
        for key, name, value in headers._rows:
            if key == "content-length":
                if length_written:
                    continue
                value = str(len(self.body))
                length_written = True
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def _same_content(self, other: Message) -> bool:
        mine = [(k, v) for k, _, v in self.headers._rows if k != "content-length"]
        theirs = [(k, v) for k, _, v in other.headers._rows if k != "content-length"]
        return mine == theirs and self.body == other.body


def _required(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise SipParseError(f"missing {name} header")
    return value


class Request(Message):
    __slots__ = ("method", "uri", "version")

    def __init__(
        self,
        method: str,
        uri: Uri,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ):
        Message.__init__(self, headers, body)  # not super(): one object fewer per message
        self.method = method
        self.uri = uri
        self.version = version

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def copy(self) -> Request:
        """A copy whose headers can change without touching this one."""
        return Request(self.method, self.uri, self.headers.copy(), self.body, self.version)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.method == other.method
            and self.uri == other.uri
            and self.version == other.version
            and self._same_content(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    __slots__ = ("status", "reason", "version")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ):
        Message.__init__(self, headers, body)  # not super(): one object fewer per message
        self.status = status
        self.reason = REASONS.get(status, "Unknown") if reason is None else reason
        self.version = version

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (
            self.status == other.status
            and self.reason == other.reason
            and self.version == other.version
            and self._same_content(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"
