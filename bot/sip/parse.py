"""Parsing SIP messages from bytes (RFC 3261 §7, §18.3)."""

from __future__ import annotations

import functools
import re

from bot.sip.errors import SipParseError
from bot.sip.grammar import TOKEN, digits_value, is_digits, is_token
from bot.sip.head import content_length, find_head_end, read_header_block
from bot.sip.headers import Headers
from bot.sip.model import MANDATORY_REQUEST_HEADERS, SINGLE_HEADERS, Message, Request, Response
from bot.sip.uri import MAX_CACHED_VALUE, PARSE_CACHE_SIZE, AbsoluteUri, Uri, parse_uri


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
    headers = Headers(rows)
    message, start_error = _start_line(start_line, headers)
    present = headers._first
    duplicate: str | None = None
    if len(present) != len(rows):  # some name repeats: is it one that may not?
        seen: set[str] = set()
        for key, _, _ in rows:
            if key in seen and key in SINGLE_HEADERS:
                duplicate = duplicate or key
            seen.add(key)
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
            _check_response(message, present)
    except SipParseError as exc:
        exc.partial = exc.partial or message
        raise
    return message


def _start_line(
    line: str, headers: Headers | None = None
) -> tuple[Request | Response, SipParseError | None]:
    """The message the start line announces, with ``headers``, and the error to raise once its
    headers are parsed (a response to a bad request still needs them, RFC 3261 §8.2.6.2)."""
    common = _common_start(line) if len(line) <= MAX_CACHED_VALUE else _read_common(line)
    if common is not None:
        method, uri, code, reason = common
        if uri is None:
            return Response(code, reason, headers), None
        return Request(method, uri, headers), None
    return _start_line_general(line, headers)


# "METHOD uri SIP/2.0" or "SIP/2.0 200 reason", the shape nearly every start line has; anything
# else takes the general path. Same grammar, just faster.
_COMMON_START_RE = re.compile(
    f"(?:({TOKEN}) ([^ ]+) SIP/2\\.0|SIP/2\\.0 ([1-6][0-9][0-9]) (.*))\\Z", re.DOTALL
)


def _read_common(line: str) -> tuple[str, Uri | None, int, str] | None:
    """(method, Request-URI, 0, "") of a common request line, ("", None, status, reason) of a
    common status line, or None for anything else (the general path reads it)."""
    m = _COMMON_START_RE.match(line)
    if m is None:
        return None
    method, raw_uri, code, reason = m.groups()
    if code is not None:
        return "", None, int(code), reason
    try:
        return method, parse_uri(raw_uri), 0, ""
    except SipParseError:
        return None  # the general path says what is wrong


# the start lines of a dialog's requests and the usual status lines come back all the time;
# the result is immutable, and as for URIs only short lines are kept
_common_start = functools.lru_cache(maxsize=PARSE_CACHE_SIZE)(_read_common)


def _start_line_general(
    line: str, headers: Headers | None = None
) -> tuple[Request | Response, SipParseError | None]:
    if line.startswith("SIP/"):
        # RFC 3261 §7.2: Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != "SIP/2.0":
            raise SipParseError(f"unsupported version {version!r}", status=None)
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status code {code!r}", status=None)
        return Response(int(code), reason, headers), None
    # RFC 3261 §7.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF (single SPs)
    parts = line.split(" ")
    if len(parts) < 3 or not is_token(parts[0]) or " SIP/" not in line.upper():
        raise SipParseError(f"not a request line: {line!r}", status=None)
    method, raw_uri, version = parts[0], parts[1], parts[2]
    request = Request(method, AbsoluteUri(scheme="invalid", rest=raw_uri), headers, version=version)
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
    raw = message.headers._first.get("content-length")
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


_CORE_HEADERS = frozenset(MANDATORY_REQUEST_HEADERS)  # what requests and responses must have
_RESPONSE_HEADERS = ("via", "call-id", "cseq", "from", "to")  # in the order they are named


_USUAL_MAX_FORWARDS = frozenset(map(str, range(256)))
"""Max-Forwards as written without leading zeros: valid (RFC 3261 §20.22, 0-255) at a glance."""


def _check_request(request: Request, present: dict[str, str]) -> None:
    if not present.keys() >= _CORE_HEADERS:
        name = next(name for name in MANDATORY_REQUEST_HEADERS if name not in present)
        raise SipParseError(f"missing {name} header", partial=request)
    try:
        request.parse_core()
    except SipParseError:
        pass  # what did not parse raises when it is read: answered then (RFC 3261 §8.2.2)
    cseq = request.cseq  # raises with the right message
    # RFC 3261 §8.1.1.5: the CSeq method MUST match the request method
    if cseq.method != request.method:
        raise SipParseError(
            f"CSeq method {cseq.method!r} does not match {request.method!r}", partial=request
        )
    max_forwards = present.get("max-forwards")
    if (
        max_forwards is not None
        and max_forwards not in _USUAL_MAX_FORWARDS
        and digits_value(max_forwards, 255) is None
    ):
        raise SipParseError(f"bad Max-Forwards {max_forwards!r}", partial=request)


def _check_response(response: Response, present: dict[str, str]) -> None:
    # Responses that cannot be matched to a transaction are dropped (RFC 3261 §18.1.2).
    if not present.keys() >= _CORE_HEADERS:
        name = next(name for name in _RESPONSE_HEADERS if name not in present)
        raise SipParseError(f"response without {name}", status=None, partial=response)
    try:
        # what matching and dialogs read (RFC 3261 §17.1.3, §12.1.2): parsed now, so a
        # response that gets through can be read without raising
        response.parse_core()
    except SipParseError as exc:
        exc.status = None
        raise
