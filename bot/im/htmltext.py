"""The text a person typed, out of the HTML an IM client sent (Lync's ``<span style=…>``, a
``<br>``, entities), in one pass over at most MAX_HTML characters.

This is not an HTML parser: it follows the tokenizer of the WHATWG HTML standard (§13.2.5) as
far as text is concerned - tags, comments, ``<!…>`` and ``<?…>`` are dropped, the content of
``<script>`` and ``<style>`` too, entities are decoded - and never looks at a character twice.
The standard library's ``html.parser`` rescans an unfinished tag on every feed: ``<a`` 32,000
times took it 3 s, and ``<![<![`` raised AssertionError.
"""

from __future__ import annotations

import html
import re

MAX_HTML = 64 * 1024
"""Characters of HTML read; the rest is dropped (no command is that long, and it bounds the
time one message takes: the same as encoding.MAX_INFLATED)."""
BREAKS = frozenset({"br", "p", "div", "li", "tr"})
"""Elements that separate words: a space where they start or end."""
RAW_TEXT = frozenset({"script", "style"})
"""Elements whose content is not text for a person (§13.1.2 raw text elements)."""
_TAG_STOP = re.compile(r""">|=\s*+(["'])""")
"""Inside a tag: its end, or an attribute value in quotes (which may hold a '>')."""
_MARKUP = re.compile(r"<[!?/A-Za-z]")
"""Where markup starts (§13.2.5.6: a "<" not followed by one of these is text)."""
_NAME_END = re.compile(r"[\s/>]")
_RAW_TEXT_END = {name: re.compile(f"</{name}", re.IGNORECASE) for name in RAW_TEXT}


def html_to_text(markup: str) -> str:
    """The text of ``markup``, entities decoded, block breaks as spaces, ends trimmed."""
    markup = markup[:MAX_HTML]
    out: list[str] = []
    i, end = 0, len(markup)
    while i < end:
        start = _MARKUP.search(markup, i)
        if start is None:
            out.append(html.unescape(markup[i:]))
            break
        out.append(html.unescape(markup[i : start.start()]))
        i = _markup(markup, start.start(), out)
    return "".join(out).strip()


def _markup(markup: str, lt: int, out: list[str]) -> int:
    """Skip the markup starting at ``markup[lt] == '<'``; where the text resumes. Markup left
    open at the end of the input is dropped with the rest (§13.2.5: EOF in a tag or comment)."""
    end = len(markup)
    after = markup[lt + 1 : lt + 2]
    if markup.startswith("<!--", lt):
        # §13.2.5.43: "<!-->" and "<!--->" are whole (empty) comments
        close = markup.find("-->", lt + 2)
        return end if close < 0 else close + 3
    if after in ("!", "?", "/"):
        # declarations, CDATA (a bogus comment in HTML content), processing instructions
        # and end tags: nothing for a person up to the next '>'
        if after == "/":
            _break(markup, lt + 2, out)
        close = markup.find(">", lt + 2)
        return end if close < 0 else close + 1
    name_end = _NAME_END.search(markup, lt + 1)
    name = markup[lt + 1 : name_end.start() if name_end else end].lower()
    close = _tag_end(markup, lt + 1)
    if close < 0:
        return end
    if name in BREAKS:
        out.append(" ")
    if name in RAW_TEXT:  # skip to its end tag, which the caller then drops
        stop = _RAW_TEXT_END[name].search(markup, close)
        return end if stop is None else stop.start()
    return close


def _tag_end(markup: str, start: int) -> int:
    """Just after the '>' that ends the tag begun before ``start``, or -1 when it does not end."""
    position = start
    while True:
        stop = _TAG_STOP.search(markup, position)
        if stop is None:
            return -1
        quote = stop.group(1)
        if quote is None:
            return stop.end()
        closing = markup.find(quote, stop.end())
        if closing < 0:
            return -1
        position = closing + 1


def _break(markup: str, name_start: int, out: list[str]) -> None:
    """An end tag of a block element separates words too."""
    name_end = _NAME_END.search(markup, name_start, name_start + 8)
    if name_end is not None and markup[name_start : name_end.start()].lower() in BREAKS:
        out.append(" ")
