"""SIP requests and responses: parsing from bytes and serializing back (RFC 3261 §7, §18.3)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from bot.sip.errors import SipParseError
from bot.sip.grammar import digits_value, is_digits, is_token
from bot.sip.head import content_length, find_head_end, read_header_block
from bot.sip.headers import Address, CSeq, Headers, Via
from bot.sip.uri import AbsoluteUri, Uri, parse_uri

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


class Message:
    """What requests and responses share: headers, body, typed accessors."""

    __slots__ = ("headers", "body", "_cache")

    def __init__(self, headers: Headers | None = None, body: bytes = b""):
        self.headers = headers if headers is not None else Headers()
        self.body = body
        # parsed header values, each against the Headers.version it was parsed from: a
        # changed (or replaced) header block is parsed again rather than served stale
        self._cache: dict[str, tuple[int, object]] = {}

    def _parsed(self, key: str, parse: Callable[[Headers], _T]) -> _T:
        version = self.headers.version
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]  # type: ignore[return-value]
        try:
            value = parse(self.headers)
        except SipParseError as exc:
            exc.partial = exc.partial or self
            raise
        self._cache[key] = (version, value)
        return value

    @property
    def call_id(self) -> str:
        return self._parsed("call-id", _call_id)

    @property
    def cseq(self) -> CSeq:
        return self._parsed("cseq", _cseq)

    @property
    def vias(self) -> tuple[Via, ...]:
        return self._parsed("vias", _vias)

    @property
    def via(self) -> Via:
        """The top Via (RFC 3261 §8.1.1.7, §17.2.3)."""
        vias = self._parsed("vias", _vias)
        if not vias:
            raise SipParseError("missing Via header", partial=self)
        return vias[0]

    def set_via(self, via: Via) -> None:
        """Make ``via`` the only Via: we originate the request (RFC 3261 §8.1.1.7)."""
        self.headers.put_first("Via", str(via))
        self._cache["vias"] = (self.headers.version, (via,))

    @property
    def from_(self) -> Address:
        return self._parsed("from", _from)

    @property
    def to(self) -> Address:
        return self._parsed("to", _to)

    @property
    def contacts(self) -> list[Address]:
        """Contact values; ``*`` (RFC 3261 §10.2.2) is not an address and is left out."""
        return [Address.parse(v) for v in self.headers.values("contact") if v.strip() != "*"]

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.partition(";")[0].strip().lower() or None

    def _start_line(self) -> str:
        raise NotImplementedError

    def serialize(self) -> bytes:
        """Wire bytes; Content-Length always states the body's length (RFC 3261 §20.14)."""
        lines = [self._start_line()]
        length_written = False
        for key, name, value in self.headers._rows:
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


def _call_id(headers: Headers) -> str:
    return _required(headers, "call-id")


def _cseq(headers: Headers) -> CSeq:
    return CSeq.parse(_required(headers, "cseq"))


def _from(headers: Headers) -> Address:
    return Address.parse(_required(headers, "from"))


def _to(headers: Headers) -> Address:
    return Address.parse(_required(headers, "to"))


def _vias(headers: Headers) -> tuple[Via, ...]:
    return tuple(Via.parse(value) for value in headers.values("via"))


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
        super().__init__(headers, body)
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
        super().__init__(headers, body)
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


def parse_message(data: bytes, *, datagram: bool = True) -> Request | Response:
    """Parse one SIP message.

    ``datagram``: the bytes are a whole UDP datagram, so a missing Content-Length means "the rest
    of the datagram" and octets past Content-Length are discarded (RFC 3261 §18.3). On a stream
    the framer has already cut the message and a missing Content-Length means no body.

    Raises :class:`SipParseError` for anything malformed, never another exception.
    """
    try:
        return _parse(data, datagram)
    except SipParseError:
        raise
    except (ValueError, IndexError, KeyError, UnicodeError, OverflowError) as exc:  # defensive
        raise SipParseError(f"unparseable message: {exc}") from exc


def _parse(data: bytes, datagram: bool) -> Request | Response:
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLFs before the start line
    bounds = find_head_end(data, datagram=datagram)
    if bounds is None:
        raise SipParseError("no end of header block", status=None)
    head_end, body_start = bounds
    start_line, rows, bad_line = read_header_block(data[:head_end])
    message, start_error = _start_line(start_line)
    present = {row[0] for row in rows}
    duplicate: str | None = None
    if len(present) != len(rows):  # some name repeats: is it one that may not?
        seen: set[str] = set()
        for key, _, _ in rows:
            if key in seen and key in SINGLE_HEADERS:
                duplicate = duplicate or key
            seen.add(key)
    message.headers = Headers(rows)
    is_request = isinstance(message, Request)
    status_hint = 400 if is_request else None
    if start_error is not None:
        start_error.partial = message
        raise start_error
    if bad_line is not None:
        raise SipParseError(
            f"malformed header line {bad_line!r}", status=status_hint, partial=message
        )
    if duplicate == "content-length":
        # two Content-Lengths leave the framing unknowable: drop it (RFC 4475 §3.3.9)
        raise SipParseError("more than one Content-Length header", status=None, partial=message)
    message.body = _body(message, data, body_start, datagram, status_hint)
    if duplicate is not None:
        raise SipParseError(
            f"more than one {duplicate} header", status=status_hint, partial=message
        )
    try:
        if isinstance(message, Request):
            _check_request(message, present)
        else:
            _check_response(message)
    except SipParseError as exc:
        exc.partial = exc.partial or message
        raise
    return message


def _start_line(line: str) -> tuple[Request | Response, SipParseError | None]:
    """The message the start line announces, and the error to raise once its headers are
    parsed (a response to a bad request still needs them, RFC 3261 §8.2.6.2)."""
    if line.startswith("SIP/"):
        # RFC 3261 §7.2: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != "SIP/2.0":
            raise SipParseError(f"unsupported version {version!r}", status=None)
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code!r}", status=None)
        return Response(int(code), reason), None
    # RFC 3261 §7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF (single SPs)
    parts = line.split(" ")
    if len(parts) < 3 or not is_token(parts[0]) or " SIP/" not in line.upper():
        raise SipParseError(f"not a request line: {line!r}", status=None)
    method, raw_uri, version = parts[0], parts[1], parts[2]
    request = Request(method, AbsoluteUri(scheme="invalid", rest=raw_uri), version=version)
    if len(parts) != 3:
        return request, SipParseError(f"malformed request line {line!r}")
    if version.upper() != "SIP/2.0":
        return request, SipParseError(f"unsupported version {version!r}", status=505)
    try:
        request.uri = parse_uri(raw_uri)
    except SipParseError as exc:
        return request, exc
    return request, None


def _body(message: Message, data: bytes, start: int, datagram: bool, status: int | None) -> bytes:
    raw = message.headers.get("content-length")
    if raw is None:
        return data[start:] if datagram else b""
    length = content_length(raw)
    if length is None:
        raise SipParseError(f"bad Content-Length {raw!r}", status=status, partial=message)
    available = len(data) - start
    if length > available:
        # RFC 3261 §18.3: a UDP message whose Content-Length exceeds its body is rejected (400)
        raise SipParseError(
            f"Content-Length {length} but only {available} octets of body",
            status=status,
            partial=message,
        )
    return data[start : start + length]


def _check_request(request: Request, present: set[str]) -> None:
    headers = request.headers
    for name in MANDATORY_REQUEST_HEADERS:
        if name not in present:
            raise SipParseError(f"missing {name} header", partial=request)
    cseq = request.cseq  # raises with the right message
    # RFC 3261 §8.1.1.5: the CSeq method MUST match the request method
    if cseq.method != request.method:
        raise SipParseError(
            f"CSeq method {cseq.method!r} does not match {request.method!r}", partial=request
        )
    max_forwards = headers.get("max-forwards")
    if max_forwards is not None and digits_value(max_forwards, 255) is None:
        raise SipParseError(f"bad Max-Forwards {max_forwards!r}", partial=request)


def _check_response(response: Response) -> None:
    # Responses that cannot be matched to a transaction are dropped (RFC 3261 §18.1.2).
    for name in ("via", "call-id", "cseq", "from", "to"):
        if name not in response.headers:
            raise SipParseError(f"response without {name}", status=None, partial=response)
    try:
        # what matching and dialogs read (RFC 3261 §17.1.3, §12.1.2): parsed now, so a
        # response that gets through can be read without raising
        _ = (response.cseq, response.via, response.from_, response.to)
    except SipParseError as exc:
        exc.status = None
        raise


class _RandomPool:
    """Bytes from the operating system's CSPRNG, read in blocks: one system call per few
    hundred tags and branches rather than one each."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._block = b""
        self._at = 0
        os.register_at_fork(after_in_child=self.discard)  # a child must not repeat our bytes

    def discard(self) -> None:
        self._block, self._at = b"", 0

    def hex(self, nbytes: int) -> str:
        if self._at + nbytes > len(self._block):
            self._block, self._at = os.urandom(self.BLOCK), 0
        start = self._at
        self._at += nbytes
        return self._block[start : self._at].hex()


_random = _RandomPool()


def new_tag() -> str:
    """A fresh From/To tag: 48 random bits, at least the 32 RFC 3261 §19.3 asks for."""
    return _random.hex(6)


def new_branch() -> str:
    """A fresh branch with the RFC 3261 magic cookie (§8.1.1.7)."""
    return "z9hG4bK" + _random.hex(10)


def make_response(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6.2: Via rows, From, Call-ID, CSeq copied;
    To copied with a tag added (for anything but 100) when it had none."""
    rows: list[tuple[str, str, str]] = []
    for key, name, value in request.headers._rows:
        if key in ("via", "from", "call-id", "cseq"):
            rows.append((key, name, value))
        elif key == "to":
            if status != 100 and ";tag=" not in value.replace(" ", "").lower():
                try:
                    has_tag = request.to.tag is not None
                except SipParseError:
                    has_tag = True  # unparseable: copy as it is
                if not has_tag:
                    value = f"{value};tag={to_tag or new_tag()}"
            rows.append((key, name, value))
    return Response(status, reason, Headers(rows))
