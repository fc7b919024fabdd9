"""Words and lengths of the replies people read: counts in the right number, and every IM short
enough for any client.

MAX_REPLY_BYTES is the budget of one reply's text. A MESSAGE carrying it with its headers
stays under 1300 bytes, the size above which RFC 3261 §18.1.1 moves a request off UDP - and a
softphone that listens on UDP only never gets it (issue 14 item 14).

The paging is done by the dispatcher, for every command: the IM service gets one short text
per command and sends it as it sends any reply (pager or session), and a handler may return
its reply as items (:class:`Paged`) to be paged at item boundaries with a count of what is
left; plain text is paged at line boundaries. The rest waits in the sender's memory for the
``more`` command (handlers/more.py)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

MAX_REPLY_BYTES = 700
"""UTF-8 bytes of text in one reply. Measured around it (tests/im/test_pager_content.py): a
pager reply's SIP headers take about 390 bytes, in CPIM (Linphone) about 590, so a full page
is about 1090 and 1290 bytes on the wire with short names: under 1300 either way."""
MAX_KEPT_BYTES = 16 * 1024
"""Of a long reply kept for 'more' (about 20 pages): what a sender can make the bot hold."""
ELLIPSIS = "…"
TEXTS_CACHED = 32
"""Long replies whose first page is kept: plain texts (at most MAX_KEPT_BYTES each, with their
lines), and replies of items (ITEMS_CACHED at most each: a listing of a few lines)."""
ITEMS_CACHED = 100
"""Items of a reply beyond which its first page is worked out each time, not kept."""


def plural(count: int, noun: str) -> str:
    """``1 conference``, ``2 conferences``."""
    return f"{count} {_number(count, noun)}"


def _number(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def size(text: str) -> int:
    """What ``text`` weighs on the wire (UTF-8): a character a byte when all are ASCII (a
    flag Python keeps on every string: no encoding to count them)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, with an ellipsis when cut (never in the
    middle of a character)."""
    if size(text) <= limit:
        return text
    room = limit - size(ELLIPSIS)
    cut = text.encode("utf-8")[: max(room, 0)].decode("utf-8", "ignore")
    return cut.rstrip() + ELLIPSIS


PAGES = "reply.pages"
"""Memory key of what is left of the last long reply, for 'more'."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Paged:
    """A reply made of items (one line each), shown a page at a time: as many items as fit in
    MAX_REPLY_BYTES, then "… 10 more conferences: send 'more'"."""

    heading: str
    """The first line of the first page (``Your conferences (40):``)."""
    continued: str = ""
    """The first line of the pages after it, when they need one."""
    items: tuple[str, ...]
    footer: str = ""
    """The last line, once every item was shown."""
    noun: str = "line"
    """What an item is, for the count of those left."""


_Left = tuple[Paged, int]
"""What waits in a sender's memory for 'more' (under PAGES): the reply and how many of its
items were shown. A plain pair, replaced at each page (not an object made for each paged
reply)."""


def first_page(reply: str | Paged, memory: dict[str, Any], budget: int = MAX_REPLY_BYTES) -> str:
    """``reply`` as one IM of at most ``budget`` bytes: whole when it fits, else its first
    page, the rest kept in ``memory`` for :func:`next_page`. A plain text too long is paged
    by its lines (a line too long for a page is split), so nothing is ever lost."""
    if isinstance(reply, str):
        if size(reply) <= budget:
            return reply
        paged, page, shown = _text_first_page(reply, budget)
    elif len(reply.items) <= ITEMS_CACHED:
        paged, page, shown = _items_first_page(reply, budget)
    else:
        paged, page, shown = _paged_first(reply, budget)
    if shown < len(paged.items):
        memory[PAGES] = (paged, shown)
    else:
        memory.pop(PAGES, None)
    return page


# Both are kept, being functions of their arguments only: the same long reply - ``help``, a
# listing that has not changed - is paged for every sender who asks, and every time.


@functools.lru_cache(maxsize=TEXTS_CACHED)
def _text_first_page(text: str, budget: int) -> tuple[Paged, str, int]:
    """A long plain text as items of at most half a page each, paged."""
    kept = shorten(text, MAX_KEPT_BYTES)
    pieces = [p for line in kept.splitlines() for p in _split(line, budget // 2)]
    return _paged_first(Paged(heading="", items=tuple(pieces)), budget)


@functools.lru_cache(maxsize=TEXTS_CACHED)
def _items_first_page(reply: Paged, budget: int) -> tuple[Paged, str, int]:
    """A handler's reply made of items, paged."""
    return _paged_first(reply, budget)


def _paged_first(reply: Paged, budget: int) -> tuple[Paged, str, int]:
    """``reply`` as kept for 'more' (bounded), its first page and the items that page shows."""
    paged = _bounded(reply)
    memory: dict[str, Any] = {PAGES: (paged, 0)}
    page = _page(memory, budget)
    left: _Left | None = memory.get(PAGES)
    return paged, page, left[1] if left is not None else len(paged.items)


def next_page(memory: dict[str, Any], budget: int = MAX_REPLY_BYTES) -> str | None:
    """The page after the last one shown, or None when nothing is left."""
    return _page(memory, budget) if PAGES in memory else None


def _page(memory: dict[str, Any], budget: int) -> str:
    left: _Left = memory[PAGES]
    reply, start = left
    total = len(reply.items)
    heading = reply.heading if start == 0 else reply.continued
    lines = [heading] if heading else []
    used = size(heading)  # bytes of "\n".join(lines), kept as lines are added (not re-joined)
    item_room = budget - used - max(size(reply.footer), size(_more(total, reply))) - 2
    shown = start
    while shown < total:
        item = shorten(reply.items[shown], item_room)
        after = reply.footer if shown + 1 == total else _more(total - shown - 1, reply)
        grown = used + (1 if lines else 0) + size(item)
        if shown > start and grown + 1 + size(after) > budget:  # the page with item, then after
            break
        lines.append(item)
        used = grown
        shown += 1
    if shown == total:
        del memory[PAGES]
        lines += [reply.footer] if reply.footer else []
    else:
        memory[PAGES] = (reply, shown)
        lines.append(_more(total - shown, reply))
    return shorten("\n".join(lines), budget)


def _bounded(reply: Paged) -> Paged:
    """``reply`` with as many items as MAX_KEPT_BYTES holds, and a last one saying how many
    more there were."""
    kept = 0
    for count, item in enumerate(reply.items):
        kept += size(item) + 1
        if kept > MAX_KEPT_BYTES:
            left = len(reply.items) - count
            note = f"({left} more {_number(left, reply.noun)} not shown: too many for chat)"
            return replace(reply, items=(*reply.items[:count], note))
    return reply


def _more(count: int, reply: Paged) -> str:
    return f"{ELLIPSIS} {count} more {_number(count, reply.noun)}: send 'more'"


def _split(line: str, limit: int) -> list[str]:
    """``line`` in pieces of at most ``limit`` bytes, cut at a space where there is one."""
    pieces = []
    rest = line.encode("utf-8")
    while len(rest) > limit:
        cut = rest[:limit]
        space = cut.rfind(b" ")
        piece = (cut[:space] if space > limit // 2 else cut).decode("utf-8", "ignore")
        pieces.append(piece)
        rest = rest[len(piece.encode("utf-8")) :].lstrip(b" ")
    return [*pieces, rest.decode("utf-8")]
