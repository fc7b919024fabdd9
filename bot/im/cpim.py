"""message/cpim (RFC 3862): the wrapper Linphone and sip.linphone.org-style accounts put
around every text and receipt, carrying IMDN's ``imdn.*`` headers (RFC 5438 §6).

A CPIM message is three blocks separated by an empty line: the message headers (``From``,
``To``, ``DateTime``, ``NS`` name-space declarations, ``imdn.Message-ID`` …), the MIME headers of
the content (``Content-Type`` …), and the content itself (RFC 3862 §3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MEDIA_TYPE = "message/cpim"
IMDN_NS = "urn:ietf:params:imdn"
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


class CpimError(ValueError):
    """Not a CPIM message we can read."""


@dataclass(frozen=True, slots=True)
class Cpim:
    headers: tuple[tuple[str, str], ...]
    """Message headers in order, names as written (``imdn.Message-ID``)."""
    content_headers: tuple[tuple[str, str], ...]
    content: bytes
    namespaces: dict[str, str] = field(default_factory=dict)
    """Prefix -> name-space URN, from the ``NS`` headers (RFC 3862 §3.3.4)."""

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def imdn(self, name: str) -> str | None:
        """An IMDN header (``Message-ID``, ``Disposition-Notification``) under whatever prefix
        the sender declared for urn:ietf:params:imdn."""
        for prefix, urn in self.namespaces.items():
            if urn == IMDN_NS:
                return self.get(f"{prefix}.{name}")
        return None

    @property
    def content_type(self) -> str | None:
        for key, value in self.content_headers:
            if key.lower() == "content-type":
                return value
        return None


def parse(body: bytes) -> Cpim:
    first = _BLANK_LINE.search(body)
    if first is None:
        raise CpimError("no empty line after the CPIM message headers")
    second = _BLANK_LINE.search(body, first.end())
    mime_end, content_start = (second.start(), second.end()) if second else (len(body), len(body))
    headers = _headers(body[: first.start()])
    namespaces: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == "ns":  # NS: imdn <urn:ietf:params:imdn>
            prefix, _, urn = value.partition("<")
            namespaces[prefix.strip()] = urn.rstrip(">").strip()
    content_headers = _headers(body[first.end() : mime_end])
    return Cpim(headers, content_headers, body[content_start:], namespaces)


def build(headers: list[tuple[str, str]], content_type: str, content: bytes, **mime: str) -> bytes:
    """A CPIM message with the IMDN name space declared (RFC 5438 §6)."""
    lines = [f"NS: imdn <{IMDN_NS}>", *(f"{name}: {value}" for name, value in headers)]
    mime_lines = [f"Content-Type: {content_type}"]
    mime_lines += [f"{name.replace('_', '-')}: {value}" for name, value in mime.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + "\r\n".join(mime_lines) + "\r\n\r\n").encode(
        "utf-8"
    ) + content


def _headers(block: bytes) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for raw in block.decode("utf-8", "replace").splitlines():
        if not raw.strip():
            continue
        name, colon, value = raw.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise CpimError(f"not a CPIM header line: {raw[:60]!r}")
        out.append((name.strip(), value.strip()))
    return tuple(out)
