"""Wire bytes <-> parsed values, round trips, and parser robustness (hypothesis)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sip import Headers, Request, Response, SipParseError, SipUri, make_response, parse_message
from bot.sip.headers import (
    Address,
    CSeq,
    Via,
    _common_sent_by,
    _parse_cseq_cached,
    header_key,
    slot_setters,
)
from bot.sip.uri import MAX_CACHED_VALUE, PARSE_CACHE_SIZE, AbsoluteUri, TelUri, parse_uri

MESSAGE = (
    b"MESSAGE sip:bot@example.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5062;rport;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:bot@example.test>\r\n"
    b'From: "Alice, the Admin" <sip:alice@example.test>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.example.test\r\n"
    b"CSeq: 314159 MESSAGE\r\n"
    b"Content-Type: text/plain;charset=UTF-8\r\n"
    b"Content-Length: 11\r\n"
    b"\r\n"
    b"my meetings"
)


def parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


# --- URIs ------------------------------------------------------------------------------------

URI_TABLE = [
    ("sip:alice@example.test", dict(user="alice", host="example.test", port=None)),
    (
        "SIP:Alice@EXAMPLE.test:5070",
        dict(scheme="sip", user="Alice", host="example.test", port=5070),
    ),
    (
        "sips:bob:secret@[2001:db8::1]:5061;transport=tcp",
        dict(scheme="sips", user="bob", password="secret", host="[2001:db8::1]", port=5061),
    ),
    ("sip:%61lice@example.test;lr;maddr=239.255.255.1", dict(user="alice")),
    ("sip:example.test?subject=project%20x&priority=urgent", dict(user=None)),
    (
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        dict(user="+1-212-555-1212", password="1234"),
    ),
]


@pytest.mark.parametrize(("text", "fields"), URI_TABLE)
def test_sip_uri_fields(text: str, fields: dict[str, object]) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    for name, value in fields.items():
        assert getattr(uri, name) == value
    assert parse_uri(str(uri)) == uri


def test_uri_parameters_and_headers_are_decoded() -> None:
    uri = parse_uri("sip:example.test;Transport=TCP;lr?subject=project%20x&priority=urgent")
    assert isinstance(uri, SipUri)
    assert uri.transport == "tcp" and uri.has_param("lr")
    assert uri.headers == (("subject", "project x"), ("priority", "urgent"))
    assert "project%20x" in str(uri)


def test_tel_and_other_schemes() -> None:
    tel = parse_uri("tel:+358-555-1234567;postd=pp22")
    assert isinstance(tel, TelUri) and tel.number == "+358-555-1234567"
    assert tel.params == (("postd", "pp22"),)
    other = parse_uri("urn:service:sos")
    assert isinstance(other, AbsoluteUri) and str(other) == "urn:service:sos"


@pytest.mark.parametrize(
    "bad",
    [
        "sip:",
        "sip:alice@",
        "sip:alice@exa mple.test",
        "sip:a@b:99999",
        "sip:a@[::1",
        "<sip:a@b>",
        "sip:al%zzice@b",
        "1sip:a@b",
        "sip:a@b;=x",
        "sip:a@2001:db8::1",
    ],
)
def test_bad_uris_raise_parse_errors(bad: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(bad)


def test_uris_and_addresses_render_once_and_copies_render_their_own_values() -> None:
    address = Address.parse('"Alice" <sip:alice@example.test:5060>;tag=a')
    assert str(address) == '"Alice" <sip:alice@example.test:5060>;tag=a' == str(address)
    moved = replace(address, uri=replace(address.sip_uri, port=5070), params=(("tag", "b"),))
    assert str(moved) == '"Alice" <sip:alice@example.test:5070>;tag=b'
    assert str(moved.uri) == "sip:alice@example.test:5070"
    assert str(address.uri) == "sip:alice@example.test:5060"
    assert moved != address and replace(moved, uri=address.uri, params=address.params) == address
    assert hash(Address.parse(str(address))) == hash(address) and "_text" not in repr(address)


# --- headers ---------------------------------------------------------------------------------


def test_values_the_fast_paths_make_have_every_field_and_compare_as_built_ones() -> None:
    via = Via.parse("SIP/2.0/udp Host.Test:5060;branch=z9hG4bKx;rport")
    params = (("branch", "z9hG4bKx"), ("rport", None))
    assert via == Via(transport="UDP", host="host.test", port=5060, params=params)
    assert hash(via) == hash(replace(via)) and CSeq.parse("7 MESSAGE") == CSeq(7, "MESSAGE")
    # a field added later could not be left unset by the fast paths: they name every field
    with pytest.raises(TypeError, match="fields"):
        slot_setters(Via, "transport", "host", "port")


def test_parsed_values_follow_every_change_of_the_headers() -> None:
    # values are parsed once and cached; any change of the header block must show at once
    request = parse_request(MESSAGE)
    assert request.from_.tag == "1928301774" and request.cseq.seq == 314159
    request.headers.set("From", "<sip:bob@example.test>;tag=xyz")
    request.headers.set("CSeq", "7 MESSAGE")
    assert request.from_.tag == "xyz" and request.cseq.seq == 7
    request.headers.prepend("Via", "SIP/2.0/TCP proxy.example.test;branch=z9hG4bKtop")
    assert request.via.host == "proxy.example.test" and len(request.vias) == 2
    request.headers.remove_first("via")
    assert request.via.branch == "z9hG4bK776asdhds"
    request.set_via(Via(transport="UDP", host="bot.example.test", params=(("branch", "z9hG4bKb"),)))
    assert [v.branch for v in request.vias] == ["z9hG4bKb"]
    request.headers = Headers.of(("Call-ID", "new"))
    assert request.call_id == "new"
    with pytest.raises(SipParseError, match="missing from"):
        _ = request.from_


def test_lookups_and_parsed_values_follow_adds_removals_and_copies() -> None:
    request = parse_request(MESSAGE)
    assert request.headers.get("to") is not None and request.to.tag is None
    request.headers.add("v", "SIP/2.0/UDP second.example.test;branch=z9hG4bKsecond")
    assert [v.host for v in request.vias][-1] == "second.example.test"
    request.headers.add("T", "<sip:other@example.test>;tag=later")
    assert request.to.tag is None  # the first To row still wins (RFC 3261 §7.3.1)
    assert request.headers.get("to") == request.headers.rows("to")[0]
    copy = request.copy()
    copy.headers.set("To", "<sip:bob@example.test>;tag=copied")
    copy.headers.remove("cseq")
    assert copy.to.tag == "copied" and "CSeq" not in copy.headers
    with pytest.raises(SipParseError, match="missing cseq"):
        _ = copy.cseq
    assert request.to.tag is None and request.cseq.seq == 314159 and "CSeq" in request.headers
    request.headers.remove("via")
    assert request.vias == () and request.headers.first_value("via") is None
    request.headers.add("Via", "SIP/2.0/TCP third.example.test;branch=z9hG4bKthird")
    assert request.via.host == "third.example.test"
    request.headers.set("Via", "SIP/2.0/UDP a.test;branch=z9hG4bKa, SIP/2.0/UDP b.test")
    assert request.via.host == "a.test" and len(request.vias) == 2
    request.headers.remove_first("via")
    assert request.headers.get("via") == "SIP/2.0/UDP b.test" and request.via.host == "b.test"
    request.headers.remove_first("via")
    assert "via" not in request.headers and request.headers.get("v") is None


def test_compact_forms_and_case_insensitive_lookup() -> None:
    raw = (
        MESSAGE.replace(b"Call-ID:", b"i:").replace(b"Content-Type:", b"c:").replace(b"Via:", b"v:")
    )
    request = parse_request(raw)
    assert request.call_id == "a84b4c76e66710@pc33.example.test"
    assert request.headers.get("CALL-id") == request.call_id
    assert request.content_type == "text/plain"
    assert request.via.branch == "z9hG4bK776asdhds"
    for letter, name in [
        ("m", "contact"),
        ("f", "from"),
        ("t", "to"),
        ("l", "content-length"),
        ("k", "supported"),
        ("s", "subject"),
        ("e", "content-encoding"),
        ("o", "event"),
        ("u", "allow-events"),
        ("r", "refer-to"),
        ("b", "referred-by"),
        ("x", "session-expires"),
    ]:
        assert Headers.of((letter, "v")).get(name) == "v"


def test_headers_keep_order_and_split_lists_outside_quotes_and_brackets() -> None:
    headers = Headers.of(
        ("Contact", '"Smith, J" <sip:j@a.test;x=1,2>, <sip:k@b.test>'),
        ("Route", "<sip:p1.test;lr>"),
        ("Contact", "sip:l@c.test"),
        ("WWW-Authenticate", 'Digest realm="a", qop="auth,auth-int"'),
    )
    assert headers.values("contact") == [
        '"Smith, J" <sip:j@a.test;x=1,2>',
        "<sip:k@b.test>",
        "sip:l@c.test",
    ]
    assert headers.values("www-authenticate") == ['Digest realm="a", qop="auth,auth-int"']
    assert [name for name, _ in headers] == ["Contact", "Route", "Contact", "WWW-Authenticate"]


def test_line_folding_is_one_space() -> None:
    raw = MESSAGE.replace(
        b"Max-Forwards: 70", b"Subject: first\r\n  second\r\n\tthird\r\nMax-Forwards: 70"
    )
    assert parse_request(raw).headers.get("subject") == "first second third"


def test_a_line_read_before_still_folds_with_the_line_after_it() -> None:
    # every line but the continuation was seen in the message before (remembered as read):
    # the continuation still joins the line it continues (RFC 3261 §7.3.1)
    parse_request(MESSAGE.replace(b"Max-Forwards: 70", b"Subject: first\r\nMax-Forwards: 70"))
    raw = MESSAGE.replace(b"Max-Forwards: 70", b"Subject: first\r\n second\r\nMax-Forwards: 70")
    request = parse_request(raw)
    assert request.headers.get("subject") == "first second"
    assert request.headers.get("max-forwards") == "70"


def test_a_bare_cr_in_a_line_after_lines_read_before_is_malformed() -> None:
    parse_request(MESSAGE)  # all its lines are remembered as read
    raw = MESSAGE.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\rX-Junk: 1")
    with pytest.raises(SipParseError, match="malformed header line") as caught:
        parse_message(raw)
    assert caught.value.status == 400


def test_name_addr_and_addr_spec() -> None:
    address = Address.parse('"Alice \\"A\\"" <sip:alice@example.test;lr>;tag=x;expires=60')
    assert address.display_name == 'Alice "A"'
    assert address.tag == "x" and address.param("expires") == "60"
    assert isinstance(address.uri, SipUri) and address.uri.has_param("lr")
    bare = Address.parse("sip:bob@example.test;tag=88")
    assert bare.tag == "88" and bare.uri == parse_uri("sip:bob@example.test")
    tokens = Address.parse("Bob Smith <sip:bob@example.test>")
    assert tokens.display_name == "Bob Smith"
    assert Address.parse(str(address)) == address


def test_via_with_lws_ipv6_and_rport() -> None:
    via = Via.parse(
        "SIP / 2.0 / tcp  [2001:db8::9:1]:6050 ; branch = z9hG4bKa ; rport ;received=[::1]"
    )
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::9:1]", 6050)
    assert (
        via.branch == "z9hG4bKa" and via.param("rport") is None and via.param("received") == "[::1]"
    )
    assert Via.parse(str(via)) == via


@pytest.mark.parametrize("value", ["1 INVITE", "4294967295 OPTIONS", "0009   INVITE"])
def test_cseq_ok(value: str) -> None:
    assert CSeq.parse(value).seq == int(value.split()[0])


@pytest.mark.parametrize("value", ["4294967296 INVITE", "-1 INVITE", "1", "x INVITE", "1 IN VITE"])
def test_cseq_bad(value: str) -> None:
    for _ in range(2):  # refused again the second time: a refusal is never remembered
        with pytest.raises(SipParseError):
            CSeq.parse(value)


def test_remembered_via_sent_bys_stay_bounded_in_count_and_length() -> None:
    for port in range(1, PARSE_CACHE_SIZE + 10):
        via = Via.parse(f"SIP/2.0/UDP 192.0.2.1:{port};branch=z9hG4bK{port}")
        assert (via.port, via.branch) == (port, f"z9hG4bK{port}")
    assert _common_sent_by.cache_info().currsize == PARSE_CACHE_SIZE
    host = "h" * MAX_CACHED_VALUE + ".test"
    assert Via.parse(f"SIP/2.0/UDP {host}:5060;branch=z9hG4bKx").host == host
    assert _common_sent_by.cache_info().currsize == PARSE_CACHE_SIZE
    assert Via.parse("SIP/2.0/UDP 192.0.2.1:1;rport").params == (("rport", None),)


def test_remembered_cseq_values_stay_bounded_in_count_and_length() -> None:
    for seq in range(PARSE_CACHE_SIZE + 10):
        assert CSeq.parse(f"{seq} MESSAGE") == CSeq(seq, "MESSAGE")
    assert _parse_cseq_cached.cache_info().currsize == PARSE_CACHE_SIZE
    long = "1 " + "M" * MAX_CACHED_VALUE
    assert CSeq.parse(long) == CSeq(1, "M" * MAX_CACHED_VALUE)
    assert _parse_cseq_cached.cache_info().currsize == PARSE_CACHE_SIZE
    assert CSeq.parse("1 MESSAGE") == CSeq(1, "MESSAGE")  # evicted first, read again


def test_cseq_values_are_remembered_for_short_sequence_numbers_only() -> None:
    # a dialog counting from 1 repeats its numbers in the next; one counting from a random
    # number (ours, most phones') never does: looking it up and storing it would only cost
    def lookups() -> int:
        info = _parse_cseq_cached.cache_info()
        return info.hits + info.misses

    before = lookups()
    assert CSeq.parse("9999 MESSAGE") == CSeq(9999, "MESSAGE")
    assert lookups() == before + 1
    assert CSeq.parse("285831820 MESSAGE") == CSeq(285831820, "MESSAGE")
    assert CSeq.parse("10000 INVITE") == CSeq(10000, "INVITE")
    assert lookups() == before + 1
    with pytest.raises(SipParseError):
        CSeq.parse("4294967296 MESSAGE")


@pytest.mark.parametrize(
    ("value", "status"), [("070", None), ("0", None), ("255", None), ("256", 400), ("7O", 400)]
)
def test_max_forwards_is_0_to_255_leading_zeros_or_not(value: str, status: int | None) -> None:
    raw = MESSAGE.replace(b"Max-Forwards: 70", f"Max-Forwards: {value}".encode())
    if status is None:
        assert parse_request(raw).headers.get("max-forwards") == value
        return
    with pytest.raises(SipParseError, match="bad Max-Forwards") as caught:
        parse_message(raw)
    assert caught.value.status == status


def test_put_first_on_a_request_without_via_adds_it_on_top() -> None:
    request = parse_request(MESSAGE)
    request.headers.remove("via")
    request.headers.put_first("Via", "SIP/2.0/UDP a.test;branch=z9hG4bKa")
    request.headers.put_first("Via", "SIP/2.0/UDP b.test;branch=z9hG4bKb")  # replaces it
    assert [name for name, _ in request.headers][:2] == ["Via", "Max-Forwards"]
    assert request.headers.rows("via") == ["SIP/2.0/UDP b.test;branch=z9hG4bKb"]
    assert request.via.host == "b.test"


# --- messages --------------------------------------------------------------------------------


def test_request_fields() -> None:
    request = parse_request(MESSAGE)
    assert request.method == "MESSAGE"
    assert request.from_.display_name == "Alice, the Admin"
    assert request.from_.tag == "1928301774"
    assert request.cseq == CSeq(314159, "MESSAGE")
    assert request.body == b"my meetings"


def test_serialize_reparses_equal_and_fixes_content_length() -> None:
    request = parse_request(MESSAGE)
    request.body = b"help"
    wire = request.serialize()
    assert b"Content-Length: 4\r\n" in wire
    assert parse_message(wire) == request


def test_stream_message_without_content_length_has_no_body() -> None:
    raw = MESSAGE.replace(b"Content-Length: 11\r\n", b"")
    assert parse_request(raw).body == b"my meetings"  # datagram: the rest of it
    assert parse_message(raw, datagram=False).body == b""


def test_response_parsing_and_make_response() -> None:
    request = parse_request(MESSAGE)
    assert request.to.tag is None and request.cseq.seq == 314159  # read (and kept) first
    response = make_response(request, 200)
    assert response.reason == "OK"
    assert response.to.tag and response.headers.get("via") == request.headers.get("via")
    assert response.to.uri == request.to.uri and response.vias == request.vias
    assert (response.cseq, response.from_, response.call_id) == (
        request.cseq,
        request.from_,
        request.call_id,
    )
    again = parse_message(response.serialize())
    assert isinstance(again, Response) and again == response
    trying = make_response(request, 100)
    assert trying.to.tag is None  # RFC 3261 §8.2.6.1: no tag on 100


def test_a_response_keeps_only_what_its_request_parsed_of_the_rows_it_copies() -> None:
    raw = MESSAGE.replace(
        b"Max-Forwards: 70", b"Contact: <sip:alice@192.0.2.10>\r\nRoute: <sip:p.test;lr>"
    )
    request = parse_request(raw)
    _ = (request.contacts, request.vias, request.from_, request.to, request.cseq, request.call_id)
    for status in (100, 180, 200):
        response = make_response(request, status)
        copied = {header_key(name) for name, _ in response.headers}
        assert set(response.headers.parsed) <= copied
        again = parse_message(response.serialize())
        for key, value in response.headers.parsed.items():  # each reads as its row does
            assert again.headers.parsed[key] == value, key


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (MESSAGE.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
        (MESSAGE.replace(b"CSeq: 314159 MESSAGE", b"CSeq: 314159 INVITE"), 400),
        (MESSAGE.replace(b"Call-ID: a84b4c76e66710@pc33.example.test\r\n", b""), 400),
        (MESSAGE.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"), 400),
        (MESSAGE.replace(b"Content-Length: 11", b"Content-Length: 99"), 400),
        (MESSAGE.replace(b"MESSAGE sip:", b"MESSAGE <sip:", 1), 400),
        (b"garbage", None),
        (b"SIP/2.0 99 Too Small\r\n\r\n", None),
    ],
)
def test_malformed_messages_carry_the_status_to_answer(data: bytes, status: int | None) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == status


# --- hypothesis ------------------------------------------------------------------------------

tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1, max_size=12)
hosts = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)
users = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=10
)
values = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30).map(
    str.strip
)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    params = draw(
        st.lists(st.tuples(tokens.map(str.lower), st.one_of(st.none(), tokens)), max_size=3)
    )
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=draw(st.one_of(st.none(), users)),
        host=draw(hosts),
        port=draw(st.one_of(st.none(), st.integers(1, 65535))),
        params=tuple(params),
    )


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method = draw(st.sampled_from(["INVITE", "MESSAGE", "OPTIONS", "SERVICE", "X-CUSTOM"]))
    uri = draw(sip_uris())
    headers = Headers.of(
        (
            "Via",
            f"SIP/2.0/UDP {draw(hosts)}:{draw(st.integers(1, 65535))};branch=z9hG4bK{draw(tokens)}",
        ),
        ("From", f"<{draw(sip_uris())}>;tag={draw(tokens)}"),
        ("To", f"<{draw(sip_uris())}>"),
        ("Call-ID", draw(tokens)),
        ("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {method}"),
    )
    for name, value in draw(st.lists(st.tuples(tokens, values), max_size=4)):
        if name.lower() not in (
            "content-length",
            "l",
            "cseq",
            "call-id",
            "i",
            "from",
            "f",
            "to",
            "t",
            "via",
            "v",
            "max-forwards",
            "content-type",
            "c",
        ):
            headers.add(f"X-{name}", value)
    body = draw(st.binary(max_size=200))
    return Request(method, uri, headers, body)


@given(requests())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_generated_requests_round_trip(request: Request) -> None:
    parsed = parse_message(request.serialize())
    assert parsed == request
    assert parse_message(parsed.serialize()) == parsed
    assert parsed.from_.uri == request.from_.uri


@given(st.binary(max_size=600))
@settings(max_examples=500)
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    _parse_everything(data)


@given(st.data())
@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_messages_raise_only_parse_errors(data: st.DataObject) -> None:
    raw = bytearray(MESSAGE)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = data.draw(st.sampled_from(list(b';:,<>"\\ \r\n%@[]=0\x00\xff')))
        if action == "flip":
            raw[position] = byte
        elif action == "insert":
            raw.insert(position, byte)
        else:
            del raw[position]
    _parse_everything(bytes(raw))


def _parse_everything(data: bytes) -> None:
    """Parse and read every typed accessor: only SipParseError may come out."""
    try:
        message = parse_message(data)
        _ = (message.cseq, message.via, message.vias, message.from_, message.to, message.contacts)
        message.serialize()
    except SipParseError:
        pass
