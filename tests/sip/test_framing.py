"""Stream framing (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

import pytest

from bot.sip import SipParseError
from bot.sip.framing import KeepAlive, StreamFramer

ONE = (
    b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n"
    b"To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello"
)


def test_messages_cut_at_any_byte_boundary() -> None:
    stream = KeepAlive.PING.value + ONE + ONE + b"\r\n"
    for split in range(1, len(stream)):
        framer = StreamFramer()
        items = framer.feed(stream[:split]) + framer.feed(stream[split:])
        assert [i for i in items if isinstance(i, bytes)] == [ONE, ONE]
        assert items[0] is KeepAlive.PING


def test_pong_is_recognised() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n" + ONE) == [KeepAlive.PONG, ONE]


def test_lone_crlf_is_a_pong_on_our_flows_and_half_a_ping_on_theirs() -> None:
    assert StreamFramer(outbound=True).feed(b"\r\n") == [KeepAlive.PONG]
    theirs = StreamFramer(outbound=False)
    assert theirs.feed(b"\r\n") == []
    assert theirs.feed(b"\r\n") == [KeepAlive.PING]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: " + b"y" * 20000, 413),
        (ONE.replace(b"Content-Length: 5", b"Content-Length: 999999999"), 413),
        (ONE.replace(b"Content-Length: 5", b"Content-Length: -5"), 400),
    ],
)
def test_caps_and_bad_lengths_break_the_stream(data: bytes, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer(max_header=16384, max_body=1 << 20).feed(data)
    assert info.value.status == status


def test_oversized_body_error_carries_the_headers_to_answer_413() -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer(max_body=3).feed(ONE)
    assert info.value.status == 413 and info.value.partial is not None
