"""Issue 15: what a remote sends leaves no state behind in the transaction layer, and its
answers go where the request really came from."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable

import pytest

from bot.sip import (
    Address,
    Request,
    SipParseError,
    head,
    headers,
    make_response,
    parse_message,
    parse_uri,
)
from bot.sip.events import (
    AckReceived,
    CancelReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransportFailed,
)
from bot.sip.layer import TransactionLayer
from bot.sip.sdp import SessionDescription
from bot.sip.sdp_audio import Crypto, answer_audio
from bot.sip.transaction import ClientTransaction, Peer, State, Timer, kept_request

SOURCE = Peer("UDP", "192.0.2.7", 5072)
TCP_SOURCE = Peer("TCP", "192.0.2.7", 40123)


def wire(
    method: str = "OPTIONS",
    *,
    uri: str = "sip:bot@example.test",
    via: str = "SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bK1",
    to: str = "<sip:bot@example.test>",
    cseq: str = "",
    max_forwards: str = "70",
    extra: str = "",
    body: str = "",
) -> bytes:
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}",
        f"Max-Forwards: {max_forwards}",
        "From: <sip:alice@example.test>;tag=a1",
        f"To: {to}",
        "Call-ID: c1@192.0.2.7",
        f"CSeq: {cseq or '1 ' + method}",
        *([extra] if extra else []),
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body.encode())}",
        "",
        body,
    ]
    return "\r\n".join(lines).encode()


def statuses(layer: TransactionLayer) -> list[int]:
    out = []
    for data, _ in layer.datagrams_to_send():
        first = data.split(b"\r\n", 1)[0].split(b" ")
        out.append(int(first[1]))
    return out


def events(layer: TransactionLayer) -> list[Event]:
    out: list[Event] = []
    while (event := layer.next_event()) is not None:
        out.append(event)
    return out


# --- item 5: non-ASCII digits ------------------------------------------------------------------

NON_ASCII_DIGITS: dict[str, dict[str, str]] = {
    "to-port": {"to": "<sip:bot@example.test:\u00b2>"},
    "to-port-arabic": {"to": "<sip:bot@example.test:\u0665\u0660\u0666\u0660>"},
    "to-port-huge": {"to": "<sip:bot@example.test:" + "9" * 5000 + ">"},
    "uri-port": {"uri": "sip:bot@example.test:\u00b2"},
    "via-port": {"via": "SIP/2.0/UDP 192.0.2.7:\u00b2;branch=z9hG4bK1"},
    "cseq": {"cseq": "\u00b2 OPTIONS"},
    "cseq-huge": {"cseq": "9" * 5000 + " OPTIONS"},
    "via-port-arabic": {"via": "SIP/2.0/UDP 192.0.2.7:\u0665\u0660;branch=z9hG4bK1"},
    "max-forwards": {"max_forwards": "\u00b9"},
    "max-forwards-huge": {"max_forwards": "7" * 5000},
    "contact-port": {"extra": "Contact: <sip:alice@192.0.2.7:\u00b2>"},
    "route-port": {"extra": "Route: <sip:proxy.example.test:\u00b3;lr>"},
}


@pytest.mark.parametrize("method", ["OPTIONS", "MESSAGE", "INVITE"])
@pytest.mark.parametrize("case", sorted(NON_ASCII_DIGITS))
def test_item5_non_ascii_digits_are_400_and_leave_no_transaction(method: str, case: str) -> None:
    layer = TransactionLayer()
    for peer in (SOURCE, TCP_SOURCE):
        data = wire(method, **NON_ASCII_DIGITS[case])
        layer.receive(data, peer, now=0.0)
        assert statuses(layer) == [400]  # no 100 Trying first: refused before anything
        assert events(layer) == []
        assert layer.transaction_count == 0 and layer.next_deadline() is None


@pytest.mark.parametrize("length", ["\u00b2", "\u0661\u0662", "9" * 5000])
def test_item5_non_ascii_content_length_is_400(length: str) -> None:
    layer = TransactionLayer()
    data = wire("MESSAGE").replace(b"Content-Length: 0", f"Content-Length: {length}".encode())
    layer.receive(data, SOURCE, now=0.0)
    assert statuses(layer) == [400]
    assert layer.transaction_count == 0


def test_item5_a_valid_request_still_goes_through() -> None:
    layer = TransactionLayer()
    layer.receive(wire("OPTIONS", to="<sip:bot@example.test:5060>"), SOURCE, now=0.0)
    assert [type(e) for e in events(layer)] == [RequestReceived]


def test_item5_status_code_digits_are_ascii() -> None:
    response = "SIP/2.0 2\u00b20 OK\r\nContent-Length: 0\r\n\r\n".encode()
    with pytest.raises(SipParseError):
        parse_message(response)


@pytest.mark.parametrize(
    "line",
    [
        "m=audio \u00b2 RTP/AVP 0",
        "m=audio " + "9" * 5000 + " RTP/AVP 0",
    ],
)
def test_item5_sdp_ports_are_ascii_digits(line: str) -> None:
    with pytest.raises(SipParseError) as info:
        SessionDescription.parse(f"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\n{line}\r\n")
    assert info.value.status == 488


def test_item5_sdp_rtpmap_and_crypto_with_odd_digits_are_ignored_or_488() -> None:
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\n"
        "m=audio 4000 RTP/AVP \u00b2 0\r\na=rtpmap:\u00b2 PCMU/8000\r\n"
        "a=rtpmap:0 PCMU/\u00b2\r\na=ptime:\u00b2\r\n"
    )
    assert sdp.media[0].rtpmap() == {"0": ("PCMU", 8000)}
    only_odd = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\n"
        "m=audio 4000 RTP/AVP \u00b2\r\na=rtpmap:\u00b2 PCMU/8000\r\n"
    )
    assert answer_audio(only_odd, "192.0.2.1", 5000) is None  # 488, not a crash
    with pytest.raises(SipParseError):
        Crypto.parse("\u00b2 AES_CM_128_HMAC_SHA1_80 inline:AAAA")


# --- item 4: Via received/rport come from the real source ---------------------------------------


def answer_options(layer: TransactionLayer, status: int = 200) -> None:
    [event] = events(layer)
    assert isinstance(event, RequestReceived)
    layer.respond(event.transaction, make_response(event.request, status), now=0.0)


@pytest.mark.parametrize(
    ("via", "port"),
    [
        ("SIP/2.0/UDP 192.0.2.7:5072;received=10.9.9.9;rport=9999;branch=z9hG4bK1", 5072),
        ("SIP/2.0/UDP 192.0.2.7:5072;rport=9999;branch=z9hG4bK1", 5072),
        ("SIP/2.0/UDP 192.0.2.7:5072;received=10.9.9.9;branch=z9hG4bK1", 5072),
        ("SIP/2.0/UDP victim.example.test:5072;received=10.9.9.9;rport;branch=z9hG4bK1", 5072),
        ("SIP/2.0/UDP victim.example.test:6000;branch=z9hG4bK1", 6000),  # §18.2.2 sent-by port
        ("SIP/2.0/UDP 10.9.9.9;rport=9999;branch=z9hG4bK1", 5072),
    ],
)
def test_item4_forged_received_and_rport_never_pick_where_the_answer_goes(
    via: str, port: int
) -> None:
    layer = TransactionLayer()
    layer.receive(wire("OPTIONS", via=via), SOURCE, now=0.0)
    answer_options(layer)
    [(data, to)] = layer.datagrams_to_send()
    assert to == Peer("UDP", SOURCE.host, port)  # the real source address, never a name
    top = parse_message(data).via
    assert top.param("received") in (None, SOURCE.host)
    if "rport" in via:
        assert (top.param("received"), top.param("rport")) == (SOURCE.host, str(SOURCE.port))
    if "10.9.9.9;" in via or "victim" in via:
        assert top.param("received") == SOURCE.host


def test_item4_refusals_also_go_to_the_real_source() -> None:
    layer = TransactionLayer()
    via = "SIP/2.0/UDP 192.0.2.7:5072;received=10.9.9.9;rport=9999;branch=z9hG4bK1"
    layer.receive(wire("FOO", via=via), SOURCE, now=0.0)  # 501, sent by the layer itself
    [(data, to)] = layer.datagrams_to_send()
    assert to == SOURCE and b" 501 " in data.split(b"\r\n")[0]


# --- item 6: caches bounded in bytes, not only in entries ---------------------------------------


def _retained_by(work: Callable[[], None]) -> int:
    """Bytes still allocated after ``work`` (its own temporaries freed): what caches kept."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_item6_long_header_names_are_not_interned() -> None:
    base = wire("OPTIONS").replace(b"Content-Length: 0", b"%s: v\r\nContent-Length: 0")

    def flood() -> None:
        for i in range(1000):
            name = b"X-%d-" % i + b"n" * 30_000
            parse_message(base % name)

    retained = _retained_by(flood)  # 30 MB of distinct names went through
    assert retained < 1_000_000
    assert all(len(name) <= head.MAX_INTERNED_NAME for name in head._valid_names)
    assert all(len(name) <= headers.MAX_CACHED_NAME for name in headers._key_cache)


def test_remembered_header_lines_stay_bounded_in_entries_and_bytes() -> None:
    base = wire("OPTIONS").replace(b"Content-Length: 0", b"X-Line: %s\r\nContent-Length: 0")

    def flood() -> None:
        for i in range(3 * head.MAX_REMEMBERED_LINES):  # distinct lines, short and long
            value = b"%d-" % i + b"v" * (100 if i % 2 else 30_000)
            message = parse_message(base % value)
            assert message.headers.get("X-Line") == value.decode()

    assert _retained_by(flood) < 2_000_000  # 3,000 long lines never kept, 4,096 short at most
    assert 0 < len(head._known_lines) <= head.MAX_REMEMBERED_LINES
    assert all(len(line) <= head.MAX_REMEMBERED_LINE for line in head._known_lines)
    assert not any(row[0] in ("via", "cseq") for row in head._known_lines.values())


def test_item6_long_uris_and_addresses_are_not_cached() -> None:
    def flood() -> None:
        for i in range(1000):
            uri = f"sip:{'u' * 30_000}{i}@example.test"
            parse_uri(uri)
            Address.parse(f"<{uri}>;tag={i}")

    retained = _retained_by(flood)  # 60 MB of distinct values went through
    assert retained < 1_000_000


def test_item6_short_values_are_still_cached() -> None:
    assert parse_uri("sip:carol@example.test") is parse_uri("sip:carol@example.test")
    assert Address.parse("<sip:carol@example.test>") is Address.parse("<sip:carol@example.test>")


# --- item 9: unauthenticated requests are answered statelessly ----------------------------------


def _answer_all(layer: TransactionLayer, status: int) -> int:
    answered = 0
    while (event := layer.next_event()) is not None:
        assert isinstance(event, RequestReceived)
        layer.respond(event.transaction, make_response(event.request, status), now=0.0)
        answered += 1
    return answered


def test_item9_twenty_thousand_options_leave_no_transaction() -> None:
    layer = TransactionLayer()
    for i in range(20_000):
        via = f"SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bK{i}"
        layer.receive(wire("OPTIONS", via=via), SOURCE, now=0.0)
        assert _answer_all(layer, 200) == 1
    assert len(layer.datagrams_to_send()) == 20_000
    assert layer.transaction_count == 0 and layer.next_deadline() is None


@pytest.mark.parametrize("status", [400, 404, 405, 415, 481, 488, 501])
@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_item9_refusals_of_non_invite_requests_leave_no_transaction(
    status: int, transport: str
) -> None:
    layer = TransactionLayer()
    peer = Peer(transport, SOURCE.host, SOURCE.port)
    for method in ("MESSAGE", "SUBSCRIBE", "REGISTER", "BYE", "INFO"):
        layer.receive(wire(method), peer, now=0.0)
        assert _answer_all(layer, status) == 1
        assert layer.transaction_count == 0
        layer.receive(wire(method), peer, now=1.0)  # a retransmission is simply answered again
        assert _answer_all(layer, status) == 1
        assert statuses(layer) == [status, status]
    assert layer.next_deadline() is None


def test_item9_layer_refusals_leave_no_transaction() -> None:
    layer = TransactionLayer()
    layer.receive(wire("CANCEL"), SOURCE, now=0.0)  # nothing to cancel: 481 from the layer
    layer.receive(wire("PUBLISH"), SOURCE, now=0.0)  # 405 from validation
    layer.receive(wire("FOO"), SOURCE, now=0.0)  # 501
    layer.receive(wire("MESSAGE", extra="Require: foo"), SOURCE, now=0.0)  # 420
    layer.receive(wire("MESSAGE", body="x").replace(b"sdp", b"x-y"), SOURCE, now=0.0)  # 415
    assert statuses(layer) == [481, 405, 501, 420, 415]
    assert layer.transaction_count == 0 and layer.next_deadline() is None


def test_item9_a_retransmitted_message_after_200_is_still_absorbed() -> None:
    layer = TransactionLayer()
    layer.receive(wire("MESSAGE"), SOURCE, now=0.0)
    assert _answer_all(layer, 200) == 1
    layer.receive(wire("MESSAGE"), SOURCE, now=0.5)
    assert events(layer) == []  # the command does not run twice
    assert statuses(layer) == [200, 200]  # the retransmission gets the stored 200
    assert layer.transaction_count == 1
    layer.handle_timer(now=64 * 0.5)  # Timer J
    assert layer.transaction_count == 0


def test_item9_refusals_of_invite_stay_stateful() -> None:
    layer = TransactionLayer()
    layer.receive(wire("INVITE", body="v=0\r\n"), SOURCE, now=0.0)
    assert _answer_all(layer, 488) == 1
    assert statuses(layer) == [100, 488]
    assert layer.transaction_count == 1  # RFC 3261 §17.2.1: kept until the ACK (Timer G/H)


# --- item 8: a connection's failure touches only that connection's transactions ----------------


class CountingPeer(Peer):
    """A peer that counts how often it is compared with another."""

    __slots__ = ()
    comparisons = [0]

    def __eq__(self, other: object) -> bool:
        CountingPeer.comparisons[0] += 1
        return isinstance(other, Peer) and (self.transport, self.host, self.port) == (
            other.transport,
            other.host,
            other.port,
        )

    __hash__ = Peer.__hash__


def test_item8_transport_failure_ends_only_that_peers_transactions() -> None:
    layer = TransactionLayer()
    others = [CountingPeer("TCP", "192.0.2.50", 20_000 + i) for i in range(5_000)]
    for i, peer in enumerate(others):
        layer.receive(wire("MESSAGE", via=f"SIP/2.0/TCP h;branch=z9hG4bKo{i}"), peer, now=0.0)
    failing = Peer("TCP", SOURCE.host, 40_000)
    for i in range(3):
        layer.receive(wire("MESSAGE", via=f"SIP/2.0/TCP h;branch=z9hG4bKf{i}"), failing, now=0.0)
    options = parse_message(wire("OPTIONS"))
    assert isinstance(options, Request)
    client = layer.send_request(options, failing, now=0.0)
    pending = [e.transaction for e in events(layer) if isinstance(e, RequestReceived)]
    doomed = {*(tx for tx in pending if tx.peer == failing), client}
    assert layer.transaction_count == 5_004 and len(doomed) == 4
    CountingPeer.comparisons[0] = 0
    layer.transport_failed(failing, "connection reset")
    assert CountingPeer.comparisons[0] == 0  # no other peer's transaction was looked at
    happened = events(layer)
    failed = [e for e in happened if isinstance(e, TransportFailed)]
    assert len(failed) == len(happened) == 4 and {e.transaction for e in failed} == doomed
    assert layer.transaction_count == 5_000
    layer.transport_failed(others[7], "connection reset")
    [other] = events(layer)
    assert isinstance(other, TransportFailed) and other.transaction.peer == others[7]
    assert layer.transaction_count == 4_999


def test_item8_transport_failure_ends_that_peers_answered_requests_only() -> None:
    """An answered request kept for Timer J (a record, not a transaction object) ends with its
    peer's transport as a transaction does (RFC 3261 §17.2.4): a copy of the request after it
    is a new request; another peer's answered request is still absorbed."""
    layer = TransactionLayer()
    other = Peer("UDP", "192.0.2.8", 5072)
    mine, theirs = (
        wire("MESSAGE", via=f"SIP/2.0/UDP {p.host}:5072;branch=z9hG4bKj") for p in (SOURCE, other)
    )
    for request, peer in ((mine, SOURCE), (theirs, other)):
        layer.receive(request, peer, now=0.0)
        assert _answer_all(layer, 200) == 1
    assert layer.transaction_count == 2
    layer.transport_failed(Peer("UDP", SOURCE.host, SOURCE.port), "ICMP port unreachable")
    assert layer.transaction_count == 1 and events(layer) == []  # the TU has answered it
    layer.receive(theirs, other, now=1.0)
    assert events(layer) == []  # absorbed: answered again from the record
    layer.receive(mine, SOURCE, now=1.0)
    assert [type(e) for e in events(layer)] == [RequestReceived]
    assert statuses(layer) == [200, 200, 200]
    assert layer.transaction_count == 2


def test_item8_answered_client_requests_end_with_their_peers_transport_only() -> None:
    """The record an answered request of ours leaves until Timer K absorbs copies of the
    response (RFC 3261 §17.1.2.2) and ends with its peer's transport (§17.1.4); a caller
    reusing a branch towards another peer takes the key without leaving the first peer's
    index pointing at it (that peer's failure would end the other's record, or raise KeyError
    out of the layer once that record was gone)."""
    layer = TransactionLayer()
    first, second = (Peer("TCP", "192.0.2.30", port) for port in (5061, 5062))
    copies = []
    for peer in (first, second):  # one branch, two peers: the second takes the key
        request = parse_message(wire("OPTIONS", via="SIP/2.0/TCP h;branch=z9hG4bKsame"))
        assert isinstance(request, Request)
        layer.send_request(request, peer, now=0.0)
        copies.append(make_response(request, 200, to_tag="b").serialize())
        layer.receive(copies[-1], peer, now=0.1)
    assert [type(e) for e in events(layer)] == [ResponseReceived, ResponseReceived]
    assert layer.transaction_count == 1  # one record under the key, the second request's
    layer.receive(copies[1], second, now=0.2)
    assert events(layer) == [] and layer.stats.dropped == 0  # absorbed in Completed
    layer.transport_failed(first, "connection reset")  # holds nothing of the key any more
    assert layer.transaction_count == 1 and events(layer) == []
    layer.transport_failed(second, "connection reset")
    assert layer.transaction_count == 0 and events(layer) == [] and layer._by_peer == {}
    layer.receive(copies[1], second, now=0.3)
    assert events(layer) == [] and layer.stats.dropped == 1  # no transaction: a stray


# --- item 7: events from the wire or the transport never raise ProtocolStateError --------------

SERVER = Peer("UDP", "192.0.2.2", 5060)


def _client_invite(layer: TransactionLayer) -> tuple[ClientTransaction, Request]:
    invite = parse_message(wire("INVITE", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc1"))
    assert isinstance(invite, Request)
    return layer.send_request(invite, SERVER, now=0.0), invite


def _answer(layer: TransactionLayer, request: Request, status: int, tag: str = "b1") -> None:
    response = make_response(request, status, to_tag=tag)
    layer.receive(response.serialize(), SERVER, now=0.1)


def test_item7_late_401_after_cancel_and_2xx_is_dropped() -> None:
    layer = TransactionLayer()
    tx, invite = _client_invite(layer)
    _answer(layer, invite, 180)
    cancel_tx = layer.cancel(tx, now=0.1)
    assert cancel_tx is not None
    _answer(layer, invite, 200)  # the callee answered before our CANCEL reached it
    events(layer)
    for late in (401, 407, 180, 487):  # late answers from the wire, in a state that ended
        _answer(layer, invite, late, tag="b2")
    assert events(layer) == []
    assert layer.stats.out_of_state == 4
    assert tx.state is State.ACCEPTED


def test_item7_late_2xx_after_a_failure_is_dropped() -> None:
    layer = TransactionLayer()
    tx, invite = _client_invite(layer)
    _answer(layer, invite, 486)
    events(layer)
    _answer(layer, invite, 200, tag="b2")
    _answer(layer, invite, 183, tag="b2")
    assert events(layer) == [] and tx.state is State.COMPLETED


@pytest.mark.parametrize("transport", ["TCP", "UDP"])
def test_item7_transport_failure_after_the_final_response_raises_nothing(
    transport: str,
) -> None:
    layer = TransactionLayer()
    peer = Peer(transport, SERVER.host, SERVER.port)
    request = parse_message(wire("MESSAGE", via=f"SIP/2.0/{transport} h;branch=z9hG4bKm1"))
    assert isinstance(request, Request)
    tx = layer.send_request(request, peer, now=0.0)
    layer.receive(make_response(request, 200, to_tag="b").serialize(), peer, now=0.1)
    [answered] = events(layer)
    del answered
    # the TU has the response; the layer keeps a record for Timer K, nothing of the transaction
    assert sys.getrefcount(tx) == 2 and layer.transaction_count == 1
    layer.transport_failed(peer, "connection reset")
    assert events(layer) == []  # nothing left to fail: no event the TU could trip on
    assert layer.transaction_count == 0


def test_item7_transport_failure_before_the_final_response_still_reaches_the_tu() -> None:
    layer = TransactionLayer()
    tx, _ = _client_invite(layer)
    layer.transport_failed(SERVER, "unreachable")
    [failed] = events(layer)
    assert isinstance(failed, TransportFailed) and failed.transaction is tx
    assert kept_request(tx).method == "INVITE"  # what the TU reads to build its 503


def test_item7_tu_answer_after_a_cancel_is_ignored() -> None:
    layer = TransactionLayer()
    layer.receive(wire("INVITE", body="v=0\r\n"), SOURCE, now=0.0)
    [received] = events(layer)
    assert isinstance(received, RequestReceived)
    layer.receive(wire("CANCEL"), SOURCE, now=0.1)
    assert statuses(layer) == [100, 200, 487]
    [cancelled] = events(layer)
    assert isinstance(cancelled, CancelReceived)
    layer.respond(received.transaction, make_response(received.request, 200), now=0.2)
    layer.respond(received.transaction, make_response(received.request, 180), now=0.2)
    assert statuses(layer) == []  # too late: the 487 stands (RFC 3261 §9.2)


def test_cancelled_invite_without_a_final_response_ends_after_64_t1() -> None:
    """Found by the property tests: after a 1xx, Timer B stopped and a CANCEL the callee
    ignored left the INVITE client transaction in Proceeding for ever (RFC 3261 §9.1)."""
    layer = TransactionLayer()
    tx, invite = _client_invite(layer)
    _answer(layer, invite, 180)
    layer.cancel(tx, now=1.0)
    _answer(layer, invite, 183)  # a later 1xx does not stop the §9.1 timer
    events(layer)
    deadline = 1.0 + 64 * 0.5
    while (due := layer.next_deadline()) is not None and due <= deadline:
        layer.handle_timer(due)
    assert layer.transaction_count == 0
    assert any(isinstance(e, TransactionTimedOut) and e.transaction is tx for e in events(layer))


@pytest.mark.parametrize(
    "change",
    [
        {"to": "<sip:bot@example.test:\u00b2>"},
        {"to": "nonsense <"},
        {"cseq": "x ACK"},
        {"extra": "X-Big: " + "x" * 70_000},
    ],
)
def test_item5_malformed_ack_is_dropped_not_handed_up(change: dict[str, str]) -> None:
    layer = TransactionLayer()
    layer.receive(wire("ACK", **change), SOURCE, now=0.0)
    assert events(layer) == [] and statuses(layer) == []  # never answered (§17.2.3)
    assert layer.transaction_count == 0


# --- a flood of every malformed kind above leaves the layer at its baseline ---------------------


def test_flood_of_every_malformed_kind_leaves_no_state_and_bounded_caches() -> None:
    layer = TransactionLayer()
    kinds: list[Callable[[int], bytes]] = [
        *(
            (lambda i, change=change: wire("MESSAGE", via=_via(i), **change))
            for change in NON_ASCII_DIGITS.values()
            if "via" not in change
        ),
        lambda i: wire("OPTIONS", via=_via(i) + ";received=10.9.9.9;rport=9999"),
        lambda i: wire("PUBLISH", via=_via(i)),
        lambda i: wire("CANCEL", via=_via(i)),
        lambda i: wire("ACK", via=_via(i), to=f"<sip:{i}@example.test:\u00b2>"),
        lambda i: wire("MESSAGE", via=_via(i), extra=f"X-{i}-{'n' * 2000}: v"),
        lambda i: wire("MESSAGE", via=_via(i), to=f"<sip:{'u' * 2000}{i}@example.test>"),
    ]
    for kind in kinds:
        for i in range(1_000):
            layer.receive(kind(i), SOURCE, now=0.0)
            _answer_all(layer, 404)  # what reaches the TU is refused as an unknown user
    assert layer.transaction_count == 0 and layer.next_deadline() is None
    assert len(head._known_lines) <= head.MAX_REMEMBERED_LINES
    assert all(len(name) <= head.MAX_INTERNED_NAME for name in head._valid_names)
    assert all(len(name) <= headers.MAX_CACHED_NAME for name in headers._key_cache)


def _via(i: int) -> str:
    return f"SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bKflood{i}"


# --- BENOTIFY (MS-SIP §3.5): delivered, never answered, never kept ---------------------------


def test_a_benotify_is_delivered_and_leaves_no_transaction() -> None:
    layer = TransactionLayer()
    for seq in range(1, 21):
        notify = wire("BENOTIFY", to="<sip:bot@example.test>;tag=b1", cseq=f"{seq} BENOTIFY",
                      via=f"SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bK{seq}",
                      extra="Event: conference")  # fmt: skip
        layer.receive(notify, SOURCE, now=float(seq))
        [event] = events(layer)
        assert isinstance(event, RequestReceived) and event.request.method == "BENOTIFY"
    assert statuses(layer) == []  # no response, not even 100
    assert layer.transaction_count == 0 and layer.next_deadline() is None


def test_an_accepted_invite_keeps_its_2xx_bytes_not_the_parsed_messages() -> None:
    """Issue 19 (memory): once the 2xx is sent, the INVITE server transaction keeps its bytes
    and the ACK's match, not the request or response: a retransmitted INVITE still gets the
    same 2xx (RFC 3261 §13.3.1.4), the ACK still stops Timer G and reaches the TU, and a second
    2xx from the TU is still sent (RFC 6026 §7.1 Accepted)."""
    layer = TransactionLayer()
    layer.receive(wire("INVITE", body="v=0\r\n"), SOURCE, now=0.0)
    [received] = events(layer)
    assert isinstance(received, RequestReceived)
    tx = received.transaction
    layer.datagrams_to_send()  # 100 Trying
    layer.respond(tx, make_response(received.request, 200, to_tag="b1"), now=0.1)
    [(sent, _)] = layer.datagrams_to_send()
    assert tx.state is State.ACCEPTED and tx.request is None and tx.last_response is None
    layer.receive(wire("INVITE", body="v=0\r\n"), SOURCE, now=0.2)
    assert layer.datagrams_to_send() == [(sent, SOURCE)]
    layer.respond(tx, make_response(received.request, 200, to_tag="b1"), now=0.3)
    assert statuses(layer) == [200]
    ack = wire("ACK", via="SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bK2", to="<sip:bot@x>;tag=b1")
    layer.receive(ack, SOURCE, now=0.4)
    [acked] = events(layer)
    assert isinstance(acked, AckReceived) and acked.transaction is tx and tx.acked
    assert Timer.G not in tx.timers


def test_an_answered_request_kept_for_timer_j_is_nothing_for_the_garbage_collector() -> None:
    """Issue 19 (memory): what a non-INVITE server transaction keeps for Timer J (RFC 3261
    §17.2.2) is, for the garbage collector, nothing: a record of its response's bytes, its
    addresses and deadline, its key and its queued timer are strings, ints, bytes and floats,
    left out of every scan (the transaction object itself is the TU's, freed with it)."""
    layer = TransactionLayer()

    def answer_many(first: int, count: int) -> None:
        for n in range(first, first + count):
            via = f"SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bKgc{n}"
            layer.receive(wire("MESSAGE", via=via), SOURCE, now=0.0)
            [received] = events(layer)
            assert isinstance(received, RequestReceived)
            layer.respond(received.transaction, make_response(received.request, 200), now=0.0)
            layer.datagrams_to_send()

    def settled() -> int:
        """Objects the collector tracks once it has looked twice: it stops tracking a tuple
        when what the tuple holds is untracked, which the order of one pass may defer."""
        gc.collect()
        gc.collect()
        return len(gc.get_objects())

    answer_many(0, 10)  # the layer's own tables and queues exist
    before = settled()
    answer_many(10, 200)
    assert layer.transaction_count == 210
    assert settled() - before <= 5
    again = "SIP/2.0/UDP 192.0.2.7:5072;branch=z9hG4bKgc42"
    layer.receive(wire("MESSAGE", via=again), SOURCE, now=1.0)
    assert events(layer) == [] and statuses(layer) == [200]  # still absorbed (§17.2.2)
    layer.handle_timer(now=64 * 0.5)  # Timer J
    assert layer.transaction_count == 0
