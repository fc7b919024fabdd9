"""A person's text out of an IM body: text/plain, text/html, multipart/alternative, and the
``ms-text-format`` header Lync puts the first message of a session in (MS-SIPRE)."""

from __future__ import annotations

import base64
import binascii
import codecs
from dataclasses import dataclass
from html.parser import HTMLParser

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


class UnsupportedBody(ValueError):
    """A body we cannot read as text: answer 415 with Accept."""


@dataclass(frozen=True, slots=True)
class ContentType:
    media: str
    """``type/subtype``, lower-cased."""
    params: dict[str, str]

    @classmethod
    def parse(cls, value: str | None) -> ContentType:
        if not value:
            return cls("text/plain", {})
        media, *rest = value.split(";")
        params = {}
        for item in rest:
            name, _, param = item.partition("=")
            params[name.strip().lower()] = param.strip().strip('"')
        return cls(media.strip().lower(), params)


def text_of(content_type: str | None, body: bytes) -> str | None:
    """The text a person typed, or None for a body that carries no text (typing, receipts).
    Raises :class:`UnsupportedBody` for anything else."""
    kind = ContentType.parse(content_type)
    if kind.media in NOT_TEXT:
        return None
    if kind.media == "text/plain":
        return _decode(body, kind.params.get("charset"))
    if kind.media == "text/html":
        return html_to_text(_decode(body, kind.params.get("charset")))
    if kind.media.startswith("multipart/") and kind.media in TEXT_TYPES:
        return _from_multipart(kind, body)
    raise UnsupportedBody(kind.media)


def ms_text_format(value: str) -> str | None:
    """The first message of a Lync IM session, from ``ms-text-format: text/plain;
    charset=UTF-8; ms-body=<base64>``; None when the header holds no body."""
    kind = ContentType.parse(value)
    encoded = kind.params.get("ms-body")
    if not encoded:
        return None
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    try:
        return text_of(value, raw)
    except UnsupportedBody:
        return None


def _decode(body: bytes, charset: str | None) -> str:
    name = (charset or "utf-8").strip().lower()
    try:
        codecs.lookup(name)
    except LookupError:
        name = "utf-8"
    return body.decode(name, errors="replace")


def _from_multipart(kind: ContentType, body: bytes) -> str | None:
    boundary = kind.params.get("boundary")
    if not boundary:
        raise UnsupportedBody(f"{kind.media} without boundary")
    parts: dict[str, str] = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        part_type = None
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-type":
                part_type = value.decode("latin-1").strip()
        if content.endswith(b"\r\n"):
            content = content[:-2]
        try:
            text = text_of(part_type, content)
        except UnsupportedBody:
            continue
        if text is not None:
            parts.setdefault(ContentType.parse(part_type).media, text)
    # RFC 2046 §5.1.4: the parts are in increasing fidelity; a person's text prefers plain
    for preferred in ("text/plain", "text/html"):
        if preferred in parts:
            return parts[preferred]
    return next(iter(parts.values()), None)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities decoded
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li"):
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return "".join(parser.out).strip()
