"""Words and lengths of the replies people read: counts in the right number, and every IM short
enough for any client.

MAX_REPLY_BYTES is the budget of one reply's text. A MESSAGE carrying it with its headers
stays under 1300 bytes, the size above which RFC 3261 §18.1.1 moves a request off UDP - and a
softphone that listens on UDP only never gets it (issue 14 item 14)."""

from __future__ import annotations

MAX_REPLY_BYTES = 1000
"""UTF-8 bytes of text in one reply (CPIM and SIP headers take the rest of 1300)."""
ELLIPSIS = "…"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 conference``, ``2 conferences`` (``many`` for irregular nouns)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def size(text: str) -> int:
    """What ``text`` weighs on the wire (UTF-8)."""
    return len(text.encode("utf-8"))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, with an ellipsis when cut (never in the
    middle of a character)."""
    if size(text) <= limit:
        return text
    room = limit - size(ELLIPSIS)
    cut = text.encode("utf-8")[: max(room, 0)].decode("utf-8", "ignore")
    return cut.rstrip() + ELLIPSIS
