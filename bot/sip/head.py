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
MAX_REMEMBERED_LINES = 4096
"""Header lines remembered with the row they read as: From, To, Call-ID, Max-Forwards...
come back unchanged in every message of a dialog, and a line seen before needs no reading.
The table is emptied when full."""
MAX_REMEMBERED_LINE = 256
"""Longest line, in characters, remembered: with the count above, the table stays bounded in
bytes whatever peers send."""
_CHANGING = frozenset({"via", "cseq", "authorization", "proxy-authorization"})
"""Header keys whose lines differ in every request (the branch, the sequence number, the
nonce count): never remembered, they would only push the others out."""
_known_lines: dict[str, tuple[str, str, str]] = {}  # header line -> its row


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


def read_header_block(head: bytes) -> tuple[str, list[tuple[str, str, str]], str | None]:
    """The start line, the header rows and the first line that is not a header line (or None)
    of a header block.

    Lines end at CRLF, or at LF in a block that has no CRLF at all (RFC 3261 §7.5 tolerance);
    continuation lines fold into the line they continue (§7.3.1: LWS folding is one SP). A row
    is ``(key, name as written, value)``: ``field-name HCOLON field-value`` where HCOLON allows
    whitespace before the colon (§7.3.1) and the key is the lower-case name with the compact
    form expanded (§7.3.3). A CR or LF left inside a line makes it malformed (§25.1).
    """
    text = head.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    if len(lines) == 1 and "\n" in text:  # no CRLF at all: lines end at LF
        read = _read_lines(_FOLD_LF_RE.sub(" ", text).split("\n"))
    else:
        read = _read_lines(lines)
        if read is None:  # a continuation line: fold, then read again
            read = _read_lines(_FOLD_CRLF_RE.sub(" ", text).split("\r\n"))
    assert read is not None  # once folded, no line but the first starts with whitespace
    return read


def _read_lines(lines: list[str]) -> tuple[str, list[tuple[str, str, str]], str | None] | None:
    """:func:`read_header_block` of the block's lines, or None when one is a continuation
    line (none is once the block is folded)."""
    rows: list[tuple[str, str, str]] = []
    bad_line: str | None = None
    names = _valid_names
    known = _known_lines
    for line in lines[1:]:
        row = known.get(line)
        if row is not None:  # read before, and the same text reads the same
            rows.append(row)
            continue
        name, colon, value = line.partition(":")
        key = names.get(name)  # a name seen before, written as usual ("Via:", no space)
        if key is None:
            name = name.rstrip(" \t")
            key = names.get(name)
        if key is None:
            if not colon or not is_token(name):
                # a continuation line starts with whitespace, which no header name does:
                # never known, never a header line, so only a line read as none can be one
                if line.startswith((" ", "\t")):
                    return None
                bad_line = bad_line or line
                continue
            key = header_key(name)
            if len(names) < MAX_INTERNED_NAMES and len(name) <= MAX_INTERNED_NAME:
                names[name] = key
        elif not colon:
            bad_line = bad_line or line
            continue
        if "\r" in line or "\n" in line:  # a bare CR or LF: it ended no line
            bad_line = bad_line or line
            continue
        row = (key, name, value.strip(" \t"))
        rows.append(row)
        # no CR or LF in the line here: none of the lines remembered has one
        if key not in _CHANGING and len(line) <= MAX_REMEMBERED_LINE:
            if len(known) >= MAX_REMEMBERED_LINES:
                known.clear()
            known[line] = row
    return lines[0], rows, bad_line


def content_length(value: str) -> int | None:
    """The octet count a Content-Length value states (RFC 3261 §20.14: 1*DIGIT), or None when
    it is not one."""
    if not is_digits(value) or len(value) > MAX_CONTENT_LENGTH_DIGITS:
        return None
    return int(value)
