"""A person's text out of an IM body: text/plain, text/html, multipart/alternative, and the
``ms-text-format`` header Lync puts the first message of a session in (MS-SIPRE)."""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bot.im.htmltext import html_to_text

TEXT_TYPES = (
    "text/plain",
    "text/html",
    "multipart/alternative",
    "multipart/mixed",
    "multipart/related",
)
# Bodies that are not a person's text: accepted with 2xx and never treated as a command
# (RFC 3994 isComposing, RFC 5438 IMDN, Lync <KeyboardActivity> INFO).
NOT_TEXT = ("application/im-iscomposing+xml", "message/imdn+xml", "application/xml")
NOT_CHARSETS = frozenset({"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined"})
"""Text codecs of Python that are no character set (RFC 2978): host-name and escape-sequence
transforms, and one that refuses everything."""
MAX_NESTING = 4
"""Multiparts read inside a multipart: each level costs a pass over the body (and a frame)."""
CHARSETS_KEPT = 32
"""Charset names whose codec is remembered (a lookup per message otherwise)."""
TYPES_KEPT = 32
"""Content-Type values whose reading is remembered (clients send the same few each time)."""


class UnsupportedBody(ValueError):
    """A body we cannot read as text: answer 415 with Accept."""


@dataclass(frozen=True, slots=True)
class ContentType:
    media: str
    """``type/subtype``, lower-cased."""
    params: Mapping[str, str]
    """Parameter names lower-cased; read-only (a value read once is shared, see
    :func:`content_type_of`)."""

    @classmethod
    def parse(cls, value: str | None) -> ContentType:
        if not value:
            return cls("text/plain", MappingProxyType({}))
        media, *rest = value.split(";")
        params = {}
        for item in rest:
            name, _, param = item.partition("=")
            params[name.strip().lower()] = param.strip().strip('"')
        return cls(media.strip().lower(), MappingProxyType(params))


@functools.lru_cache(maxsize=TYPES_KEPT)
def content_type_of(value: str | None) -> ContentType:
    """:meth:`ContentType.parse`, remembered for the values seen last (one per message
    otherwise)."""
    return ContentType.parse(value)


def text_of(content_type: str | None, body: bytes) -> str | None:
    """The text a person typed, or None for a body that carries no text (typing, receipts).
    Raises :class:`UnsupportedBody` for anything else, and never another error."""
    return text_in(content_type_of(content_type), body)


def text_in(kind: ContentType, body: bytes, *, depth: int = 0) -> str | None:
    """:func:`text_of` a body whose Content-Type is parsed already."""
    if kind.media in NOT_TEXT:
        return None
    if kind.media == "text/plain":
        return _decode(body, kind.params.get("charset"))
    if kind.media == "text/html":
        return html_to_text(_decode(body, kind.params.get("charset")))
    if kind.media.startswith("multipart/") and kind.media in TEXT_TYPES and depth < MAX_NESTING:
        return _from_multipart(kind, body, depth + 1)
    raise UnsupportedBody(kind.media)


def ms_text_format(value: str) -> str | None:
    """The first message of a Lync IM session, from ``ms-text-format: text/plain;
    charset=UTF-8; ms-body=<base64>``; None when the header carries no body. Raises
    :class:`UnsupportedBody` (and nothing else) for one that cannot be read: the INVITE is then
    refused before any session exists (488)."""
    kind = ContentType.parse(value)
    encoded = kind.params.get("ms-body")
    if not encoded:
        return None
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raise UnsupportedBody("ms-body is not base64") from None
    return text_in(kind, raw)


def _decode(body: bytes, charset: str | None) -> str:
    """``body`` in its charset (RFC 2046 §4.1.2); one Python does not know is read as UTF-8
    (US-ASCII commands read the same), one that is no character set is refused."""
    name = _codec(charset)
    if name in NOT_CHARSETS:
        raise UnsupportedBody(f"charset {charset!r} is not a character set")
    try:
        return body.decode(name, errors="replace")
    except (LookupError, UnicodeError) as exc:  # LookupError: bytes-to-bytes (base64, zlib)
        raise UnsupportedBody(f"charset {charset!r}: {exc}") from None


@functools.lru_cache(maxsize=CHARSETS_KEPT)
def _codec(charset: str | None) -> str:
    """Python's name of ``charset``: UTF-8 when it has none, or one Python does not know."""
    try:
        return codecs.lookup((charset or "utf-8").strip()).name
    except (LookupError, ValueError):  # unknown, or not even a name ("\0", lone surrogates)
        return "utf-8"


def _from_multipart(kind: ContentType, body: bytes, depth: int) -> str | None:
    boundary = kind.params.get("boundary")
    if not boundary:
        raise UnsupportedBody(f"{kind.media} without boundary")
    try:  # header values are read from the wire as UTF-8 with surrogate escapes
        delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    except UnicodeError:
        raise UnsupportedBody(f"{kind.media}: boundary is not text") from None
    parts: dict[str, str] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        # RFC 2046 §5.1.1: the delimiter line ends (after optional padding) with CRLF; the
        # part's headers follow, then an empty line - at once when the part has no headers
        part = chunk.partition(b"\n")[2]
        head, _, content = (
            (b"", b"", part[2:]) if part[:2] == b"\r\n" else part.partition(b"\r\n\r\n")
        )
        part_type = None
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-type":
                part_type = value.decode("latin-1").strip()
        if content.endswith(b"\r\n"):
            content = content[:-2]
        part_kind = ContentType.parse(part_type)
        try:
            text = text_in(part_kind, content, depth=depth)
        except UnsupportedBody:
            continue
        if text is not None:
            parts.setdefault(part_kind.media, text)
    # RFC 2046 §5.1.4: the parts are in increasing fidelity; a person's text prefers plain
    for preferred in ("text/plain", "text/html"):
        if preferred in parts:
            return parts[preferred]
    return next(iter(parts.values()), None)
