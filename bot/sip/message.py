"""SIP requests and responses (RFC 3261 §7): the one import path for the message objects
(bot.sip.model) and parsing (bot.sip.parse); here, building new ones - identifiers, responses
(§8.2.6) and out-of-dialog requests (§8.1.1)."""

from __future__ import annotations

import os

from bot.sip.errors import SipParseError
from bot.sip.headers import Headers
from bot.sip.model import REASONS, Message, Request, Response
from bot.sip.parse import parse_message

__all__ = [
    "REASONS",
    "Message",
    "Request",
    "Response",
    "make_response",
    "new_branch",
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
