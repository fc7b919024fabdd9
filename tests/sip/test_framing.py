"""Stream framing (RFC 3261 §18.3) and keep-alives (RFC 5626 §3.5.1)."""

from __future__ import annotations

import pytest

from bot.sip import Request, Response, SipParseError, parse_message
from bot.sip.framing import KeepAlive, StreamFramer
from bot.sip.layer import MAX_MESSAGE_SIZE

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


# --- issue 15 item 1: the framer reads headers exactly as the parser does ----------------------

HIDDEN = (
    b"MESSAGE sip:bot@example.test SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKhidden\r\n"
    b"From: <sip:alice@example.test>;tag=h\r\nTo: <sip:bot@example.test>\r\nCall-ID: hidden\r\n"
    b"CSeq: 1 MESSAGE\r\nP-Asserted-Identity: <sip:alice@example.test>\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nhelp"
)
"""The request a sender tries to smuggle inside the body of its own (issue 15 item 1)."""


def _outer(length_lines: bytes) -> bytes:
    return (
        b"MESSAGE sip:bot@example.test SIP/2.0\r\n"
        b"Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKouter\r\n"
        b"From: <sip:mallory@example.test>;tag=m\r\nTo: <sip:bot@example.test>\r\n"
        b"Call-ID: outer\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n"
        + length_lines
        + b"\r\n"
        + HIDDEN
    )


SMUGGLING = {
    "folded": b"X-Pad: x\r\n Content-Length: 0\r\nContent-Length: %d\r\n" % len(HIDDEN),
    "compact-first": b"l: 0\r\nContent-Length: %d\r\n" % len(HIDDEN),
    "two-lengths": b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(HIDDEN),
    "space-before-colon": b"Content-Length : 0\r\nContent-Length: %d\r\n" % len(HIDDEN),
    "bare-lf-inside": b"X-Pad: x\nContent-Length: 0\r\nContent-Length: %d\r\n" % len(HIDDEN),
}


def _frame_and_parse(stream: bytes) -> list[Request | Response]:
    """Frame ``stream`` and parse every message; each must end where the framer cut it."""
    out: list[Request | Response] = []
    for chunk in StreamFramer().feed(stream):
        assert isinstance(chunk, bytes)
        try:
            message = parse_message(chunk, datagram=False)
        except SipParseError:
            continue  # refused by the parser: answered 400 or dropped, never run
        head_end = chunk.index(b"\r\n\r\n") + 4
        assert chunk[head_end:] == message.body  # the parser's end is the framer's end
        out.append(message)
    return out


@pytest.mark.parametrize("form", sorted(SMUGGLING))
def test_item1_smuggled_request_never_comes_out_of_the_stream(form: str) -> None:
    stream = _outer(SMUGGLING[form])
    try:
        messages = _frame_and_parse(stream)
    except SipParseError as exc:
        # ambiguous framing: 400 with the headers to answer it, then the connection closes
        assert exc.status == 400 and isinstance(exc.partial, Request)
        return
    assert all(m.headers.get("call-id") != "hidden" for m in messages)
    assert [m.body for m in messages] in ([], [HIDDEN])


@pytest.mark.parametrize(
    ("form", "refused"),
    [("folded", False), ("compact-first", True), ("two-lengths", True),
     ("space-before-colon", True), ("bare-lf-inside", False)],
)  # fmt: skip
def test_item1_framer_refuses_exactly_the_ambiguous_lengths(form: str, refused: bool) -> None:
    framer = StreamFramer()
    if refused:
        with pytest.raises(SipParseError) as info:
            framer.feed(_outer(SMUGGLING[form]))
        assert info.value.status == 400
    else:
        [chunk] = framer.feed(_outer(SMUGGLING[form]))
        assert chunk == _outer(SMUGGLING[form])  # one message, the hidden one is its body


@pytest.mark.parametrize("name", [b"Content-Length : ", b"l: ", b"content-LENGTH:\t", b"L :"])
def test_item1_every_spelling_of_content_length_frames_like_the_parser(name: bytes) -> None:
    stream = ONE.replace(b"Content-Length: ", name) + ONE
    assert _frame_and_parse(stream) == [parse_message(ONE, datagram=False)] * 2


@pytest.mark.parametrize("value", [b"5x", b"\xc2\xb2", b"", b"12345678901", b"+5"])
def test_item1_unparsable_content_length_is_refused_with_400(value: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer().feed(ONE.replace(b"Content-Length: 5", b"Content-Length: " + value))
    assert info.value.status == 400 and isinstance(info.value.partial, Request)


def test_item1_default_body_cap_is_the_message_size_limit() -> None:
    head = ONE.split(b"\r\n\r\n")[0].replace(b"Content-Length: 5", b"Content-Length: %d")
    fits = StreamFramer().feed(head % (MAX_MESSAGE_SIZE - 400) + b"\r\n\r\n")
    assert fits == []  # waits for the body
    with pytest.raises(SipParseError) as info:
        StreamFramer().feed(head % (MAX_MESSAGE_SIZE + 1) + b"\r\n\r\n")
    assert info.value.status == 413


@pytest.mark.parametrize("stray", [b"\r\r\n", b"\n", b"\r", b"\n\n\r"])
def test_item1_stray_line_ends_before_a_bare_lf_message_hide_nothing(stray: bytes) -> None:
    """Found by tests/sip/test_properties.py: the parser skipped leading CR/LF and then read
    bare-LF lines, while the framer read the same lines with the CR/LF in front (as one line)
    and found no Content-Length at all."""
    outer = (
        _outer(b"Content-Length: %d\r\n" % len(HIDDEN))
        .replace(b"\r\n", b"\n")
        .replace(b"\n\nMESSAGE", b"\r\n\r\nMESSAGE")
    )
    head, _, _ = outer.partition(b"\r\n\r\n")
    outer = head + b"\r\n\r\n" + HIDDEN
    messages = _frame_and_parse(stray + outer)
    assert [m.headers.get("call-id") for m in messages] == ["outer"]
    assert messages[0].body == HIDDEN
