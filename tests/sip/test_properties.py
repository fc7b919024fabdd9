"""Property tests (hypothesis) over what reads the wire: the SIP parser and stream framer, SDP
and digest header parsing (issue 15, fuzzing). Bounded so CI stays fast: each property runs a
few hundred examples with no deadline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.sip import (
    Address,
    Request,
    Response,
    SipParseError,
    Via,
    make_response,
    parse_message,
    parse_uri,
)
from bot.sip.challenge import _read_params
from bot.sip.digest import Challenge, DigestServer, Verdict, parse_auth_params
from bot.sip.events import RequestReceived
from bot.sip.framing import KeepAlive, StreamFramer
from bot.sip.grammar import parse_params, parse_params_general, quote
from bot.sip.headers import CSeq
from bot.sip.layer import TransactionLayer
from bot.sip.parse import _start_line, _start_line_general
from bot.sip.sdp import SessionDescription, answer_message
from bot.sip.sdp_audio import answer_audio
from bot.sip.transaction import ClientTransaction, Peer

EXAMPLES = 250
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the checkout; every run draws afresh
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TORTURE = Path(__file__).resolve().parents[1] / "data" / "sip-torture"
TORTURE_MESSAGES = sorted(
    p.read_bytes() for p in TORTURE.glob("*/*") if p.suffix in (".dat", ".sip")
)

# --- strategies ---------------------------------------------------------------------------------

_TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
_WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_VALUE = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=',;"<>\\'),
    min_size=1,
    max_size=20,
)
_KNOWN = frozenset(
    {"via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "max-forwards",
     "content-length", "l", "content-type", "c", "contact", "m", "route", "record-route",
     "require", "content-encoding", "e", "accept"}
)  # fmt: skip


@st.composite
def _header_line(draw: st.DrawFn, line_end: str) -> str:
    """An extra header line, spelled oddly: folded, with whitespace before the colon."""
    name = draw(_TOKEN.filter(lambda n: n.lower() not in _KNOWN))
    words = draw(st.lists(_VALUE, min_size=1, max_size=4))
    separator = draw(st.sampled_from([" ", line_end + " ", line_end + "\t", "  "]))
    before_colon = draw(st.sampled_from(["", " ", "\t"]))
    return f"{name}{before_colon}: {separator.join(words)}"


@st.composite
def sip_request(draw: st.DrawFn) -> bytes:
    """A valid request as a peer might spell it: compact forms, folding, odd spacing, lines
    ending in bare LF (RFC 3261 §7.5 tolerance) though the header block ends in CRLF CRLF."""
    line_end = draw(st.sampled_from(["\r\n", "\n"]))
    method = draw(st.sampled_from(["OPTIONS", "MESSAGE", "INVITE", "REGISTER", "INFO", "BYE"]))
    user, host = draw(_WORD), draw(_WORD)
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    uri = f"sip:{user}@{host}.test" + (f":{port}" if port else "")
    branch = "z9hG4bK" + draw(_WORD)
    body = draw(st.binary(max_size=64))
    name = {  # header names in full or compact form (RFC 3261 §7.3.3)
        n: draw(st.sampled_from([full, compact]))
        for n, full, compact in [
            ("via", "Via", "v"), ("from", "From", "f"), ("to", "To", "t"),
            ("call-id", "Call-ID", "i"), ("length", "Content-Length", "l"),
        ]
    }  # fmt: skip
    colon = draw(st.sampled_from([": ", " : ", ":", "\t:\t"]))
    lines = [
        f"{method} {uri} SIP/2.0",
        f"{name['via']}{colon}SIP/2.0/TCP {host}.test;branch={branch}",
        f"{name['from']}{colon}<sip:{draw(_WORD)}@example.test>;tag={draw(_WORD)}",
        f"{name['to']}{colon}<{uri}>",
        f"{name['call-id']}{colon}{draw(_WORD)}@{host}",
        f"CSeq{colon}{draw(st.integers(0, 2**32 - 1))} {method}",
        "Max-Forwards: 70",
        *draw(st.lists(_header_line(line_end), max_size=4)),
        *(["Content-Type: text/plain"] if body else []),
        f"{name['length']}{colon}{len(body)}",
    ]
    return (line_end.join(lines) + "\r\n\r\n").encode() + body


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _frame(chunks: list[bytes]) -> list[bytes | KeepAlive]:
    framer = StreamFramer()
    out: list[bytes | KeepAlive] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


# --- parser and framer --------------------------------------------------------------------------


_STRAY = st.sampled_from([b"", b"", b"\r\n", b"\r\n\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"])
"""What may come before a message on a stream: keep-alives and stray line ends (§7.5)."""


@PROPERTY
@given(
    messages=st.lists(st.tuples(_STRAY, sip_request()), min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 10**6), max_size=12),
)
def test_a_stream_frames_the_same_however_it_is_cut(
    messages: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(stray + data for stray, data in messages)
    framed = [item for item in _frame(_chunks(stream, cuts)) if isinstance(item, bytes)]
    assert framed == [data for _, data in messages]  # each message ends where it was made to
    for _, data in messages:
        on_stream = parse_message(data, datagram=False)
        assert on_stream == parse_message(data, datagram=True)  # the parser agrees


def test_one_message_split_at_every_byte_boundary() -> None:
    for data in (TORTURE_MESSAGES[0], _sample_request()):
        stream = data + KeepAlive.PING.value + data
        whole = _frame([stream])
        for cut in range(1, len(stream)):
            assert _frame([stream[:cut], stream[cut:]]) == whole


def _sample_request() -> bytes:
    return (
        b"MESSAGE sip:bot@example.test SIP/2.0\r\nv : SIP/2.0/TCP h.test;branch=z9hG4bKx\r\n"
        b"f: <sip:a@example.test>;tag=1\r\nt: <sip:bot@example.test>\r\ni: c\r\n"
        b"CSeq: 1 MESSAGE\r\nX-Pad: a\r\n Content-Length: 0\r\nl: 5\r\n\r\nhello"
    )


@PROPERTY
@given(data=sip_request())
def test_parse_serialize_parse_is_stable_for_generated_requests(data: bytes) -> None:
    _assert_round_trip(parse_message(data, datagram=False))


@pytest.mark.parametrize("index", range(len(TORTURE_MESSAGES)))
def test_parse_serialize_parse_is_stable_for_torture_messages(index: int) -> None:
    try:
        message = parse_message(TORTURE_MESSAGES[index])
    except SipParseError:
        return  # refused by design (the torture table says how)
    _assert_round_trip(message)


def _assert_round_trip(message: Request | Response) -> None:
    wire = message.serialize()
    again = parse_message(wire)
    assert again == message
    assert again.serialize() == wire
    assert _frame([wire]) == [wire]  # and what we send frames as one message


@st.composite
def mutated(draw: st.DrawFn, max_edits: int = 6) -> bytes:
    """A real message with bytes flipped, inserted, removed or repeated."""
    base = draw(st.one_of(st.sampled_from(TORTURE_MESSAGES), sip_request()))
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_edits))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "repeat"]))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(
                st.one_of(
                    st.sampled_from(
                        [b"\r\n", b"\r\n ", b":", b";", b",", b"\xc2\xb2", b"\xd9\xa5", b"\xff",
                         b"<", b">", b"\"", b"%", b"[", b"]", b"9" * 5000, b"\x00"]
                    ),
                    st.binary(max_size=8),
                )
            )  # fmt: skip
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


def _read_everything(message: Request | Response) -> None:
    """What the core reads from a message it accepted: each may refuse, none may crash."""
    for read in (
        lambda: message.vias,
        lambda: message.from_,
        lambda: message.to,
        lambda: message.cseq,
        lambda: message.call_id,
        lambda: message.contacts,
        lambda: message.content_type,
    ):
        try:
            read()
        except SipParseError:
            pass


def _readable(message: Request | Response) -> bool:
    try:
        _ = (message.vias, message.from_, message.to, message.cseq, message.contacts)
    except SipParseError:
        return False
    return True


@PROPERTY
@given(data=st.one_of(mutated(), st.binary(max_size=400)), datagram=st.booleans())
def test_any_bytes_only_ever_raise_sip_parse_error(data: bytes, datagram: bool) -> None:
    try:
        message = parse_message(data, datagram=datagram)
    except SipParseError:
        event("refused by the parser")
    else:
        _read_everything(message)
        if _readable(message):
            event("parsed and readable: round trip checked")
            _assert_round_trip(message)
    try:
        _frame([data, data])
    except SipParseError:
        pass


@PROPERTY
@given(data=mutated(max_edits=1), datagram=st.booleans())
def test_parse_serialize_parse_is_stable_for_mutated_messages(data: bytes, datagram: bool) -> None:
    try:
        message = parse_message(data, datagram=datagram)
    except SipParseError:
        event("refused by the parser")
        return
    if _readable(message):
        event("parsed and readable: round trip checked")
        _assert_round_trip(message)


@PROPERTY
@given(data=mutated(), transport=st.sampled_from(["UDP", "TCP"]))
def test_the_layer_survives_any_bytes_and_keeps_no_state_for_refusals(
    data: bytes, transport: str
) -> None:
    layer = TransactionLayer()
    source = Peer(transport, "192.0.2.7", 5060)
    layer.receive(data, source, now=0.0)  # never raises
    sent = layer.datagrams_to_send()
    # answers go to where the request came from, whatever its Via says (RFC 3581 §4)
    assert all(to.host == source.host and to.transport == transport for _, to in sent)
    if data.lstrip(b"\r\n").startswith((b"ACK ", b"SIP/")):
        assert sent == []  # neither an ACK nor a response is ever answered (§17.2.3, §18.1.2)
    delivered = 0
    while (event := layer.next_event()) is not None:
        delivered += isinstance(event, RequestReceived)
    assert layer.transaction_count == delivered  # what was not delivered left nothing behind


# --- SDP ---------------------------------------------------------------------------------------

_SDP_LINE = st.one_of(
    st.sampled_from(
        ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
         "m=audio 4000 RTP/AVP 0 8 101", "m=audio 4000 RTP/SAVP 0", "m=message 5060 sip null",
         "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000", "a=ptime:20",
         "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
         "a=accept-types:text/plain", "a=sendonly", "m=audio \u00b2 RTP/AVP \u00b2",
         "a=rtpmap:\u0665 PCMU/\u00b2", "a=ptime:" + "9" * 5000, "m=", "a=", "b=AS:64"]
    ),
    st.text(max_size=30),
)  # fmt: skip


@PROPERTY
@given(lines=st.lists(_SDP_LINE, max_size=12), first=st.booleans())
def test_sdp_only_ever_raises_sip_parse_error(lines: list[str], first: bool) -> None:
    text = "\r\n".join((["v=0"] if first else []) + lines) + "\r\n"
    try:
        sdp = SessionDescription.parse(text)
    except SipParseError:
        return
    assert SessionDescription.parse(sdp.serialize()).media == sdp.media
    try:
        answer_audio(sdp, "192.0.2.9", 5000)
    except SipParseError:
        pass
    answer_message(sdp, "192.0.2.9", 5060, "sip:bot@192.0.2.9")


# --- digest headers ----------------------------------------------------------------------------

_AUTH_PIECES = st.sampled_from(
    ['Digest ', 'username="alice"', 'realm="example.test"', 'nonce="abc"', "uri=sip:x",
     'response="0123"', "qop=auth", 'qop="auth,auth-int"', "nc=00000001", "algorithm=MD5",
     ", ", ",", "=", '"', "\\", " ", "\t", "cnonce=", "opaque=\"o\"", "stale=true"]
)  # fmt: skip


_ANY_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.sampled_from(["a", "\u00e9", "\x00", '"', "\\", ",", "="]), max_size=8),
)


@st.composite
def auth_header(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.one_of(_AUTH_PIECES, st.text(max_size=6)), max_size=14))
    return "".join(pieces)


@PROPERTY
@given(value=st.one_of(auth_header(), st.text(max_size=60)))
def test_digest_header_parsing_only_ever_raises_sip_parse_error(value: str) -> None:
    for parse in (parse_auth_params, Challenge.parse):
        try:
            parse(value)
        except SipParseError:
            pass


@PROPERTY
@given(username=_ANY_TEXT, response=_ANY_TEXT, extra=auth_header())
def test_digest_server_verify_returns_a_verdict_for_any_credentials(
    username: str, response: str, extra: str
) -> None:
    server = DigestServer("example.test", qop=())
    nonce = Challenge.parse(
        server.challenges(0.0, source="127.0.0.1")[0]
    ).nonce  # a nonce of ours: checked fully
    request = parse_message(_sample_request())
    assert isinstance(request, Request)
    value = (
        f'Digest realm="example.test", nonce="{nonce}", uri="{request.uri}", '
        f"username={quote(username)}, response={quote(response)}, {extra}"
    )
    request.headers.add("Authorization", value)
    verdict = server.verify(request, lambda user: "secret", now=0.0, source="127.0.0.1")
    assert isinstance(verdict, Verdict)


@pytest.mark.parametrize("field", ["username", "response"])
def test_digest_server_verify_survives_non_utf8_credentials(field: str) -> None:
    server = DigestServer("example.test", qop=())
    nonce = Challenge.parse(server.challenges(0.0, source="127.0.0.1")[0]).nonce
    values = {"username": b"alice", "response": b"0" * 32, field: b"\x80"}
    authorization = (
        b'Authorization: Digest realm="example.test", nonce="%s", uri="sip:bot@example.test", '
        b'username="%s", response="%s"\r\n'
        % (nonce.encode(), values["username"], values["response"])
    )
    request = parse_message(_sample_request().replace(b"X-Pad", authorization + b"X-Pad"))
    assert isinstance(request, Request)
    assert isinstance(
        server.verify(request, lambda user: "secret", now=0.0, source="127.0.0.1"), Verdict
    )


# --- the transaction layer under any sequence of events ----------------------------------------

_PEERS = [Peer("UDP", "192.0.2.7", 5060), Peer("TCP", "192.0.2.8", 40000)]
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["request", "answer", "send", "response", "cancel", "fail", "time"]),
        st.integers(0, 5),  # which branch / transaction
        st.sampled_from(["INVITE", "MESSAGE", "OPTIONS", "ACK", "CANCEL", "BYE"]),
        st.sampled_from([100, 180, 200, 202, 401, 404, 481, 486, 487, 500]),
        st.integers(0, 1),  # which peer
        st.floats(0.0, 40.0),  # seconds to advance
    ),
    max_size=40,
)


def _request(method: str, branch: int, transport: str, cseq_method: str | None = None) -> bytes:
    return (
        f"{method} sip:bot@example.test SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 192.0.2.7:5060;branch=z9hG4bK{branch}\r\n"
        f"From: <sip:alice@example.test>;tag=a{branch}\r\nTo: <sip:bot@example.test>\r\n"
        f"Call-ID: call{branch}\r\nCSeq: 1 {cseq_method or method}\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@PROPERTY
@given(ops=_OPS)
def test_any_sequence_of_events_raises_nothing_and_ends_with_no_state(
    ops: list[tuple[str, int, str, int, int, float]],
) -> None:
    layer = TransactionLayer()
    now = 0.0
    pending: list[RequestReceived] = []
    finals: set[int] = set()
    clients: list[ClientTransaction] = []
    for op, n, method, status, p, seconds in ops:
        peer = _PEERS[p]
        if op == "request":
            layer.receive(_request(method, n, peer.transport), peer, now)
        elif op == "answer" and pending:
            received = pending[n % len(pending)]
            if id(received.transaction) not in finals:
                if status >= 200:
                    finals.add(id(received.transaction))
                layer.respond(received.transaction, make_response(received.request, status), now)
        elif op == "send" and method not in ("ACK", "CANCEL"):
            request = parse_message(_request(method, 100 + n + len(clients), peer.transport))
            assert isinstance(request, Request)
            clients.append(layer.send_request(request, peer, now))
        elif op == "response" and clients:
            tx = clients[n % len(clients)]
            wire = _request(tx.method, int(str(tx.key[0])[7:]), tx.peer.transport)
            request = parse_message(wire)
            assert isinstance(request, Request)
            response = make_response(request, status, to_tag=f"t{n % 2}")
            layer.receive(response.serialize(), tx.peer, now)
        elif op == "cancel" and clients:
            layer.cancel(clients[n % len(clients)], now)
        elif op == "fail":
            layer.transport_failed(peer, "gone")
        elif op == "time":
            now += seconds
            layer.handle_timer(now)
        layer.datagrams_to_send()
        while (event := layer.next_event()) is not None:
            if isinstance(event, RequestReceived):
                pending.append(event)
    for received in pending:  # the TU answers what it still has
        if id(received.transaction) not in finals:
            layer.respond(received.transaction, make_response(received.request, 500), now)
    for tx in clients:  # and gives up on calls still ringing (RFC 3261 §9.1)
        layer.cancel(tx, now)
    start = now
    while (deadline := layer.next_deadline()) is not None:  # then time passes
        now = max(now, deadline)
        layer.handle_timer(now)
        assert now - start <= 64 * 0.5 + 5.0  # every timer ends by 64*T1 (+T4)
    assert layer.transaction_count == 0


# --- typed header values: what we write back reads the same ------------------------------------


def _values(*names: str) -> list[str]:
    out: list[str] = []
    for data in TORTURE_MESSAGES:
        try:
            message = parse_message(data)
        except SipParseError as exc:
            if exc.partial is None:
                continue
            message = exc.partial  # type: ignore[assignment]
        for name in names:
            out += message.headers.values(name)
    return sorted(set(out))


@st.composite
def _edited(draw: st.DrawFn, corpus: list[str]) -> str:
    text = draw(st.sampled_from(corpus))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        piece = draw(
            st.one_of(
                st.sampled_from([";", ":", "=", "[", "]", "<", ">", '"', "%", "%4", "@", " ",
                                 ";rport", ";received=10.0.0.1", ";lr", "?a=b", "\u00b2"]),
                st.text(max_size=3),
            )
        )  # fmt: skip
        text = text[:at] + piece + text[at + draw(st.integers(0, 2)) :]
    return text


VIAS = _values("via")
ADDRESSES = _values("from", "to", "contact", "route", "record-route")


@PROPERTY
@given(value=_edited(VIAS))
def test_a_via_we_write_back_reads_the_same(value: str) -> None:
    try:
        via = Via.parse(value)
    except SipParseError:
        return
    assert Via.parse(str(via)) == via


@PROPERTY
@given(value=_edited(ADDRESSES))
def test_an_address_we_write_back_reads_the_same(value: str) -> None:
    try:
        address = Address.parse(value)
    except SipParseError:
        return
    assert Address.parse(str(address)) == address
    assert parse_uri(str(address.uri)) == address.uri


@PROPERTY
@given(value=st.one_of(auth_header(), st.text(max_size=60)))
def test_digest_header_fast_path_reads_exactly_as_the_full_reader(value: str) -> None:
    """parse_auth_params reads plain parameters with one regular expression (issue 19 item 2:
    every pre-authorized request is parsed); whatever it accepts, the character-by-character
    reader reads the same way, and it raises exactly when that reader does."""
    text = f"Digest {value}".strip()
    rest = text.partition(" ")[2]
    try:
        exact: dict[str, str] | None = _read_params(rest, text)
    except SipParseError:
        exact = None
    try:
        fast: dict[str, str] | None = parse_auth_params(text)[1]
    except SipParseError:
        fast = None
    assert fast == exact


def _read_or_none(read: Callable[[str], object], value: str) -> object:
    try:
        return read(value)
    except SipParseError:
        return None


_PARAM_TEXT = st.text(alphabet="aZ09-.!%*_+`'~;= \t\"[]:", max_size=30)


@PROPERTY
@given(value=st.one_of(_PARAM_TEXT, _edited([p for v in VIAS for p in v.split(";", 1)[1:]])))
def test_parameters_fast_path_reads_exactly_as_the_general_reader(value: str) -> None:
    """parse_params reads ``token[=token]`` lists with one regular expression (issue 19 item
    1); whatever it accepts, the general reader reads alike, and it raises when that one does."""
    general = _read_or_none(lambda text: parse_params_general(text, "test"), value)
    assert _read_or_none(lambda text: parse_params(text, "test"), value) == general


@PROPERTY
@given(
    value=st.one_of(
        _edited(VIAS),
        st.builds("SIP/2.0/udp Host.test:{};branch=z9hG4bKx".format, st.integers(0, 99999)),
    )
)
def test_via_fast_path_reads_exactly_as_the_general_reader(value: str) -> None:
    assert _read_or_none(Via.parse, value) == _read_or_none(Via._parse_general, value)


@PROPERTY
@given(
    value=st.one_of(
        st.text(alphabet="0123456789 \tINVITE\u00b2", max_size=14),
        st.builds("{} {}".format, st.integers(0, 2**33), st.sampled_from(["INVITE", "x y", ""])),
    )
)
def test_cseq_fast_path_reads_exactly_as_the_general_reader(value: str) -> None:
    assert _read_or_none(CSeq.parse, value) == _read_or_none(CSeq._parse_general, value)


def _start_read(
    read: Callable[[str], tuple[Request | Response, SipParseError | None]], line: str
) -> tuple[object, ...]:
    try:
        message, error = read(line)
    except SipParseError as exc:
        return ("raised", str(exc), exc.status)
    if isinstance(message, Response):
        shape: tuple[object, ...] = (message.status, message.reason, message.version)
    else:
        shape = (message.method, message.uri, message.version)
    return shape, None if error is None else (str(error), error.status)


@PROPERTY
@given(
    line=st.one_of(
        st.text(alphabet="SIP/2.0 INVITE sip:a@b;x 699 OK\t\r\u00b2", max_size=30),
        st.builds(
            "{} {} {}".format,
            st.sampled_from(["INVITE", "MESSAGE", "in vite", "SIP/2.0", ""]),
            st.sampled_from(["sip:bot@example.test", "sip:a@b:99999", "tel:+1", "x", "<sip:a>"]),
            st.sampled_from(["SIP/2.0", "sip/2.0", "SIP/2.1", "SIP/2.0 x"]),
        ),
        st.builds("SIP/2.0 {} {}".format, st.integers(0, 1000), st.sampled_from(["OK", "", "a b"])),
    )
)
def test_start_line_fast_path_reads_exactly_as_the_general_reader(line: str) -> None:
    assert _start_read(_start_line, line) == _start_read(_start_line_general, line)
