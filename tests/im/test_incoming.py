"""What an IM request carries (bot.im.incoming): the reading of short bodies is kept, and a
kept reading is never given to a request it does not fit."""

from __future__ import annotations

import gzip

from bot.im.content import ImContent
from bot.im.incoming import KEPT_BYTES, read_request
from bot.sip.message import Request, Response
from bot.sip.parse import parse_message


def message(body: bytes, *headers: str) -> Request:
    head = (
        "MESSAGE sip:bot@example.test SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-incoming\r\n"
        "From: <sip:alice@example.test>;tag=a\r\nTo: <sip:bot@example.test>\r\n"
        "Call-ID: incoming-test\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
        + "".join(f"{header}\r\n" for header in headers)
        + f"Content-Length: {len(body)}\r\n\r\n"
    )
    request = parse_message(head.encode() + body)
    assert isinstance(request, Request)
    return request


def text(request: Request) -> str | None:
    content = read_request(request)
    assert isinstance(content, ImContent), content
    return content.text


def test_the_same_short_body_reads_the_same_and_follows_its_headers() -> None:
    for _ in range(2):  # the second round reads what the first kept
        assert text(message(b"<b>help</b>", "Content-Type: text/plain")) == "<b>help</b>"
        assert text(message(b"<b>help</b>", "Content-Type: text/html")) == "help"
        assert text(message(b"<b>help</b>", "c: text/html")) == "help"  # compact form
        latin = "caf\xe9".encode("latin-1")
        assert text(message(latin, "Content-Type: text/plain; charset=ISO-8859-1")) == "caf\xe9"
        assert text(message(latin, "Content-Type: text/plain")) == "caf\ufffd"
        packed = gzip.compress(b"my meetings")
        gzipped = message(packed, "Content-Type: text/plain", "Content-Encoding: gzip")
        assert text(gzipped) == "my meetings"
        long = b"x" * (KEPT_BYTES + 1)
        assert text(message(long, "Content-Type: text/plain")) == long.decode()


def test_an_unreadable_body_is_refused_every_time() -> None:
    for _ in range(2):  # what raises is not kept: each gets its 415
        refused = read_request(message(b"\x00\x01", "Content-Type: application/pdf"))
        assert isinstance(refused, Response) and refused.status == 415
        assert "text/plain" in (refused.headers.get("Accept") or "")
