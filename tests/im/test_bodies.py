"""A person's text out of IM bodies (RFC 3428 bodies, HTML, multipart, ms-text-format)."""

from __future__ import annotations

import base64

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
    assert ms_text_format("text/plain; ms-body=!!!notbase64") is None
