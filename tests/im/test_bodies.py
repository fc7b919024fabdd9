"""A person's text out of IM bodies (RFC 3428 bodies, HTML, multipart, ms-text-format)."""

from __future__ import annotations

import base64
import time

import pytest

from bot.im.bodies import UnsupportedBody, html_to_text, ms_text_format, text_of


def test_plain_text_with_and_without_charset() -> None:
    assert text_of("text/plain", b"my meetings") == "my meetings"
    assert text_of("text/plain; charset=ISO-8859-1", "caf\xe9".encode("latin-1")) == "caf\xe9"
    assert text_of("text/plain;charset=unknown-9", b"help") == "help"
    assert text_of(None, b"help") == "help"


def test_html_is_stripped_and_entities_decoded() -> None:
    assert text_of("text/html", b"<p>My&nbsp;<b>meetings</b> &amp; more</p>") == (
        "My\xa0meetings & more"
    )
    assert html_to_text("<style>p{}</style><span>help</span><script>x()</script>") == "help"


def test_multipart_alternative_prefers_plain() -> None:
    body = (
        b"--b1\r\nContent-Type: text/html\r\n\r\n<b>from html</b>\r\n"
        b"--b1\r\nContent-Type: text/plain\r\n\r\nfrom plain\r\n--b1--\r\n"
    )
    assert text_of('multipart/alternative; boundary="b1"', body) == "from plain"
    html_only = b"--b1\r\nContent-Type: text/html\r\n\r\n<i>help</i>\r\n--b1--\r\n"
    assert text_of("multipart/alternative; boundary=b1", html_only) == "help"


def test_typing_and_receipts_are_not_text() -> None:
    for kind in ("application/im-iscomposing+xml", "message/imdn+xml", "application/xml"):
        assert text_of(kind, b"<isComposing/>") is None


def test_other_bodies_are_unsupported() -> None:
    with pytest.raises(UnsupportedBody):
        text_of("image/png", b"\x89PNG")


def test_ms_text_format_first_message() -> None:
    encoded = base64.b64encode(b"my meetings").decode()
    assert ms_text_format(f"text/plain; charset=UTF-8; msgr=WAAtAE0A; ms-body={encoded}") == (
        "my meetings"
    )
    assert ms_text_format("text/plain; charset=UTF-8") is None
    with pytest.raises(UnsupportedBody):
        ms_text_format("text/plain; ms-body=!!!notbase64")


def _nested_multipart(levels: int) -> tuple[str, bytes]:
    content_type, body = "text/plain", b"help"
    for level in range(levels):
        boundary = f"b{level}"
        body = (
            f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f"multipart/mixed; boundary={boundary}"
    return content_type, body


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain; charset=base64", b"aGVscA=="),  # a bytes-to-bytes codec: LookupError
        ("text/plain; charset=rot13", b"uryc"),
        ("text/plain; charset=zlib", b"x\x9c"),
        ("text/plain; charset=idna", b"help"),  # UnicodeError for any error handler
        ("text/plain; charset=punycode", b"help\xff"),
        ("text/plain; charset=unicode_escape", b"\\x68elp"),  # an escape transform
        ("text/plain; charset=undefined", b"help"),
        ("text/html; charset=base64", b"<b>help</b>"),
    ],
)
def test_undecodable_bodies_are_unsupported_never_another_error(
    content_type: str, body: bytes
) -> None:
    """Issue 15 item 11: body decoding raises only UnsupportedBody (a 415), whatever the
    charset or structure a sender names."""
    with pytest.raises(UnsupportedBody):
        text_of(content_type, body)


def test_odd_but_harmless_charset_names_read_as_utf8() -> None:
    for charset in ("unknown-9", "utf\x00-8", "\udcff", "x" * 10_000, ' "utf-8" '):
        assert text_of(f"text/plain; charset={charset}", b"help") == "help"
    assert text_of("text/plain; charset=utf-16-le", "help".encode("utf-16-le")) == "help"
    assert (
        text_of('multipart/mixed; boundary="\udcff"', b"--\xff\r\n\r\nhelp\r\n--\xff--") == "help"
    )
    assert text_of(*_nested_multipart(3)) == "help"  # real clients nest two levels at most
    assert text_of(*_nested_multipart(1000)) is None  # was a RecursionError: no text in reach


@pytest.mark.parametrize(
    "header",
    [
        "text/plain; charset=base64; ms-body=aGVscA==",
        "text/plain; charset=idna; ms-body=aGVscA==",
        "text/html; charset=undefined; ms-body=" + base64.b64encode(b"<![<![").decode(),
        "text/plain; ms-body=\udcff\u00e9",
        "image/png; ms-body=aGVscA==",
    ],
)
def test_unreadable_ms_text_format_is_unsupported_never_another_error(header: str) -> None:
    """Issue 15 item 11: a first message that cannot be read is an unsupported body (the
    INVITE gets 488 before a session exists), never another error."""
    with pytest.raises(UnsupportedBody):
        ms_text_format(header)


def test_html_parser_assertions_are_gone() -> None:
    """Issue 15 item 11: ``<![<![`` made html.parser raise AssertionError."""
    assert text_of("text/html", b"help<![<![") == "help"
    assert text_of("text/html", b"<![CDATA[x]]>help") == "help"


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<a" * 32_000, ""),  # 88 bytes deflated; html.parser took 3 s
        ('<a b="' * 10_000, ""),  # html.parser took 8 s
        ("help<!--" + "x" * 60_000, "help"),  # a comment open to the end
        ("help" + "<![" * 20_000, "help"),
        ("help" + "</" * 30_000, "help"),
        ("<a " + 'b="1" ' * 10_000 + ">help", "help"),  # a long run of attributes
        ("<a " + "b= " * 20_000 + ">help", "help"),
        ('<a title="x>y" ' * 4_000 + ">help", "help"),  # '>' inside quoted values
        ("<script>" * 10_000 + "help", ""),
        ("<b>" * 21_000 + "help", "help"),  # the most tags a 64 KiB message holds
        ("&amp;" * 12_000, "&" * 12_000),
        ("<" * 60_000, "<" * 60_000),
        ("help " + "x" * 100_000, "help " + "x" * (64 * 1024 - 5)),  # read up to the cap
    ],
)
def test_quadratic_html_converts_in_linear_time(markup: str, text: str) -> None:
    """Issue 15 item 7: no input of at most a message's size blocks the event loop."""
    started = time.perf_counter()
    assert html_to_text(markup) == text
    assert time.perf_counter() - started < 0.5


def test_what_lync_and_other_clients_send_converts_as_before() -> None:
    lync = (
        '<span style="font-family:Segoe UI; color:#000000; ">my&nbsp;meetings</span>'
        '<span style="font-size:10pt;"></span>'
    )
    assert html_to_text(lync) == "my\xa0meetings"
    assert html_to_text("meeting<br>2") == "meeting 2"
    assert html_to_text("<p>cancel 1</p><p>yes</p>") == "cancel 1  yes"
    assert html_to_text("<DIV>a &lt; b &#x26; c&#38;d &eacute;</DIV>") == "a < b & c&d \xe9"
    assert html_to_text("1 < 2 and 3 <= 4") == "1 < 2 and 3 <= 4"
    assert html_to_text("<!-- note -->help<!-->x<?php echo ?>") == "helpx"
    assert html_to_text("<STYLE>b{}</Style>help<script src='a>b'>x</script >") == "help"
    assert html_to_text("<img alt='>' src=x>help") == "help"
