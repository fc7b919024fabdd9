"""What a UAS refuses before the application sees a request (RFC 3261 §8.2.3): the content
codings of a body."""

from __future__ import annotations

import pytest

from bot.sip.message import Request, parse_message
from bot.sip.validation import UasPolicy, check_request


def message(*extra: str, body: str = "help") -> Request:
    lines = [
        "MESSAGE sip:bot@example.test SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bK1",
        "Max-Forwards: 70",
        "From: <sip:alice@example.test>;tag=a1",
        "To: <sip:bot@example.test>",
        "Call-ID: c1@192.0.2.7",
        "CSeq: 1 MESSAGE",
        "Content-Type: text/plain",
        *extra,
        f"Content-Length: {len(body)}",
        "",
        body,
    ]
    request = parse_message("\r\n".join(lines).encode())
    assert isinstance(request, Request)
    return request


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("Content-Encoding: identity",),
        ("Content-Encoding: IDENTITY",),  # codings are case-insensitive (RFC 3261 §20.12)
        ("Content-Encoding: identity, ",),  # an empty element names no coding
        ("Content-Encoding: identity", "Content-Encoding: Identity"),
    ],
)
def test_a_body_in_codings_we_undo_reaches_the_application(extra: tuple[str, ...]) -> None:
    assert check_request(message(*extra), UasPolicy()) is None


@pytest.mark.parametrize(
    "extra",
    [
        ("Content-Encoding: gzip",),
        ("Content-Encoding: identity, gzip",),
        ("e: identity", "e: deflate"),  # compact form, the second row
    ],
)
def test_a_body_in_another_coding_gets_415_naming_the_codings_we_undo(
    extra: tuple[str, ...],
) -> None:
    refused = check_request(message(*extra), UasPolicy())
    assert refused is not None and refused.status == 415
    assert refused.headers.get("Accept-Encoding") == "identity"


def test_codings_of_no_body_are_not_looked_at() -> None:
    assert check_request(message("Content-Encoding: gzip", body=""), UasPolicy()) is None
