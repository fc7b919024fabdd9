"""What an IM request to the bot carries, or the error response its body deserves (415, 413),
for pager MESSAGEs and the requests inside IM sessions alike."""

from __future__ import annotations

import functools

from bot.im.bodies import UnsupportedBody
from bot.im.content import ImContent, read
from bot.im.encoding import ENCODINGS, BadEncoding, BodyTooLarge
from bot.sip.errors import SipParseError
from bot.sip.message import Request, Response, make_response

ACCEPTED = (
    "text/plain",
    "text/html",
    "multipart/alternative",
    "message/cpim",
    "message/imdn+xml",
    "application/im-iscomposing+xml",
)
"""What a message to the bot may carry (the Accept of a 415)."""
UNREADABLE = (UnsupportedBody, BadEncoding, SipParseError)
"""What decoding an IM body may raise (bot.im.bodies, bot.im.encoding, bot.im.cpim): an
unsupported body (415/488), never a 500."""
BODIES_KEPT = 64
"""Short bodies whose reading is kept: people send the same few commands."""
KEPT_BYTES = 200
"""Bytes of a body beyond which its reading is not kept (a command is short)."""


def read_request(request: Request) -> ImContent | Response:
    """The message's content, or the error response its body deserves."""
    first = request.headers.first_values()
    content_type, body = first.get("content-type"), request.body
    try:
        if "content-encoding" not in first and len(body) <= KEPT_BYTES:
            return _read_kept(content_type, body)
        return read(content_type, request.headers.values("content-encoding"), body)
    except UNREADABLE:
        return _unsupported(request)
    except BodyTooLarge:
        return make_response(request, 413, "Request Entity Too Large (inflated body)")


@functools.lru_cache(maxsize=BODIES_KEPT)
def _read_kept(content_type: str | None, body: bytes) -> ImContent:
    """:func:`read` of a short body without Content-Encoding, kept: a function of its
    arguments only, and the content it gives is immutable. (What it raises is not kept.)"""
    return read(content_type, [], body)


def _unsupported(request: Request) -> Response:
    """RFC 3261 §21.4.13: 415 with what we do read."""
    response = make_response(request, 415)
    response.headers.add("Accept", ", ".join(ACCEPTED))
    response.headers.add("Accept-Encoding", ", ".join(sorted(ENCODINGS)))
    return response
