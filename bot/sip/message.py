"""SIP requests and responses (RFC 3261 §7): the one import path for the message objects
(bot.sip.model) and parsing (bot.sip.parse); here, building new ones - identifiers, responses
(§8.2.6) and out-of-dialog requests (§8.1.1)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

from bot.sip.errors import SipParseError
from bot.sip.headers import Address, Headers
from bot.sip.model import REASONS, Message, Request, Response
from bot.sip.parse import parse_message
from bot.sip.uri import Uri

__all__ = [
    "REASONS",
    "Message",
    "Request",
    "Response",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_request",
    "new_tag",
    "parse_message",
]


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


_COPIED = frozenset({"via", "from", "to", "call-id", "cseq"})
"""RFC 3261 §8.2.6.2: what a response copies of its request."""


def make_response(
    request: Request, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> Response:
    """A response to ``request`` per RFC 3261 §8.2.6.2: Via rows, From, Call-ID, CSeq copied;
    To copied with a tag added (for anything but 100) when it had none."""
    source = request.headers
    rows: list[tuple[str, str, str]] = []
    first: dict[str, str] = {}
    for row in source._rows:  # the rows copied and their first values in one pass
        if row[0] in _COPIED:
            rows.append(row)
            first.setdefault(row[0], row[2])
    # the same rows read the same: what the request parsed of them holds (values are immutable),
    # and it parsed only the headers copied here (Message.parse_core and accessors)
    parsed = source.parsed.copy()
    if status != 100 and "to" in first and not _has_to_tag(request):
        rows = [
            (key, name, f"{value};tag={to_tag or new_tag()}")
            if key == "to" and ";tag=" not in value.replace(" ", "").lower()
            else (key, name, value)
            for key, name, value in rows
        ]
        first["to"] = next(value for key, _, value in rows if key == "to")  # now with its tag
        parsed.pop("to", None)
    headers = Headers(rows, first)
    headers.parsed = parsed
    return Response(status, reason, headers)


def _has_to_tag(request: Request) -> bool:
    """Whether the request's To has a tag; an unparseable To is copied as it is."""
    try:
        return request.to.tag is not None
    except SipParseError:
        return True


def new_call_id(host: str = "sipbot") -> str:
    """A fresh Call-ID (RFC 3261 §8.1.1.4): 96 random bits ``@host``."""
    return f"{new_tag()}{new_tag()}@{host}"


def new_request(
    method: str,
    uri: Uri,
    *,
    from_: Address | str,
    to: Address | str,
    call_id: str | None = None,
    cseq: int = 1,
    contact: Address | str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """A request outside any dialog, as RFC 3261 §8.1.1 builds it: the Request-URI (§8.1.1.1),
    To without a tag (§8.1.1.2), From with a fresh tag unless it has one (§8.1.1.3), a fresh
    Call-ID unless one is kept - a registration keeps its own (§10.2) - (§8.1.1.4), CSeq with
    the method (§8.1.1.5), Contact (§8.1.1.8), then ``headers`` and the body with its
    Content-Type (§7.4.1). Via and Max-Forwards are the client's (bot.transport.client), as
    they depend on where the request goes."""
    rows = Headers.of(
        ("From", _tagged(from_)),
        ("To", str(to)),
        ("Call-ID", call_id if call_id is not None else new_call_id()),
        ("CSeq", f"{cseq} {method}"),
    )
    if contact is not None:
        rows.add("Contact", str(contact))
    if content_type is not None:
        rows.add("Content-Type", content_type)
    for name, value in headers:
        rows.add(name, value)
    return Request(method, uri, rows, body)


def _tagged(address: Address | str) -> str:
    """``address`` with a From tag: its own, or a fresh one (RFC 3261 §19.3)."""
    parsed = Address.parse(address) if isinstance(address, str) else address
    if parsed.tag is not None:
        return str(address)
    if isinstance(address, str):
        return f"{address};tag={new_tag()}"
    return str(replace(address, params=(*address.params, ("tag", new_tag()))))
