"""Reading a SIP header block (RFC 3261 §7.3, §7.5, §18.3).

The one reader the message parser and the stream framer share: where the header block ends,
how continuation lines fold, what a header line's name is and what Content-Length says are
decided here only, so the framer can never cut a stream where the parser would not (a folded
`` Content-Length: 0``, a compact ``l``, ``Content-Length : 0`` all read alike in both).
"""

from __future__ import annotations

import re

from bot.sip.grammar import is_digits, is_token
from bot.sip.headers import header_key

_FOLD_CRLF_RE = re.compile(r"\r\n[ \t]+")
_FOLD_LF_RE = re.compile(r"\n[ \t]+")
MAX_INTERNED_NAME = 128
"""Longest header name, in characters, remembered as valid: real names are short, and a
table keyed by whatever a peer sends must not grow with the length of what it sends."""
MAX_INTERNED_NAMES = 4096
"""Distinct header names remembered as valid (they are tokens; no need to check again)."""
MAX_CONTENT_LENGTH_DIGITS = 10
"""A Content-Length longer than this is no length we could ever hold (RFC 3261 §20.14)."""
_valid_names: dict[str, str] = {}  # header names seen before -> their key


def find_head_end(data: bytes | bytearray, *, datagram: bool) -> tuple[int, int] | None:
    """(end of the header block, start of the body) in ``data``, or None when it is not there.

    RFC 3261 §7.5: an empty line (CRLF) ends the header block. A datagram may also use bare LFs
    (RFC 3261 §7.5 asks for tolerance) or end right after its last header (§18.3: the datagram
    frames it); a stream needs the CRLF CRLF, or the framer and the parser could disagree on a
    prefix of the stream.
    """
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return end, end + 4
    if not datagram:
        return None
    end = data.find(b"\n\n")
    if end >= 0:
        return end, end + 2
    if data.endswith(b"\r\n"):
        return len(data) - 2, len(data)
    return None


def header_lines(head: bytes) -> list[str]:
    """The lines of a header block, start line first, continuation lines folded into the line
    they continue (RFC 3261 §7.3.1: LWS folding is one SP). Lines end at CRLF, or at LF in a
    message that has no CRLF at all; a CR or LF left inside a line makes it malformed."""
    text = head.decode("utf-8", "surrogateescape")
    if "\r\n" in text:
        if "\r\n " in text or "\r\n\t" in text:
            text = _FOLD_CRLF_RE.sub(" ", text)
        return text.split("\r\n")
    if "\n " in text or "\n\t" in text:
        text = _FOLD_LF_RE.sub(" ", text)
    return text.split("\n")


def header_row(line: str) -> tuple[str, str, str] | None:
    """(key, name as written, value) of one unfolded header line, or None when it is not a
    header line (RFC 3261 §7.3.1: ``field-name HCOLON field-value``; HCOLON allows whitespace
    before the colon; the key is lower-case with the compact form expanded, §7.3.3)."""
    name, colon, value = line.partition(":")
    if not colon:
        return None
    name = name.rstrip(" \t")
    key = _valid_names.get(name)
    if key is None:
        if not is_token(name):
            return None
        key = header_key(name)
        if len(_valid_names) < MAX_INTERNED_NAMES and len(name) <= MAX_INTERNED_NAME:
            _valid_names[name] = key
    value = value.strip(" \t")
    if "\r" in value or "\n" in value:
        return None  # a bare CR or LF is no part of any header value (RFC 3261 §25.1)
    return key, name, value


def content_length(value: str) -> int | None:
    """The octet count a Content-Length value states (RFC 3261 §20.14: 1*DIGIT), or None when
    it is not one."""
    if not is_digits(value) or len(value) > MAX_CONTENT_LENGTH_DIGITS:
        return None
    return int(value)
