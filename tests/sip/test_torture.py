"""RFC 4475 and RFC 5118 torture messages fed through the server side, as each INDEX says."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sip import Request, Response, SipParseError, parse_message
from bot.sip.events import RequestReceived, ResponseReceived
from bot.sip.layer import TransactionLayer
from bot.sip.transaction import Peer

TORTURE = Path(__file__).resolve().parents[1] / "data" / "sip-torture"
"""RFC 4475 and RFC 5118 messages, kept in the checkout (tests/data/README.md says where from)."""
DELIVER = "deliver"  # the request reaches the application
DROP = "drop"  # nothing is sent and nothing reaches the application
PARSE = "parse"  # a response that parses (and, with no transaction for it, is dropped)

# What our UAS does with each message; every row agrees with INDEX.tsv ("expected_handling").
RFC4475 = {
    "wsinv.dat": DELIVER,
    "intmeth.dat": 501,
    "esc01.dat": DELIVER,
    "escnull.dat": DELIVER,
    "esc02.dat": 501,
    "lwsdisp.dat": DELIVER,
    "longreq.dat": DELIVER,
    "dblreq.dat": DELIVER,
    "semiuri.dat": DELIVER,
    "transports.dat": DELIVER,
    "mpart01.dat": DELIVER,
    "unreason.dat": PARSE,
    "noreason.dat": PARSE,
    "badinv01.dat": 400,
    "clerr.dat": 400,
    "ncl.dat": 400,
    "scalar02.dat": 400,
    "scalarlg.dat": DROP,
    "quotbal.dat": 400,
    "ltgtruri.dat": 400,
    "lwsruri.dat": 400,
    "lwsstart.dat": 400,
    "trws.dat": 400,
    "escruri.dat": 400,
    "baddate.dat": DELIVER,
    "regbadct.dat": 400,
    "badaspec.dat": 400,
    "baddn.dat": 400,
    "badvers.dat": 505,
    "mismatch01.dat": 400,
    "mismatch02.dat": 400,
    "bigcode.dat": DROP,
    "badbranch.dat": DELIVER,
    "insuf.dat": 400,
    "unkscm.dat": 416,
    "novelsc.dat": 416,
    "unksm2.dat": 400,
    "bext01.dat": 420,
    "invut.dat": 415,
    "regaut01.dat": DELIVER,
    "multi01.dat": 400,
    "mcl01.dat": DROP,
    "bcast.dat": PARSE,
    "zeromf.dat": DELIVER,
    "cparam01.dat": DELIVER,
    "cparam02.dat": DELIVER,
    "regescrt.dat": DELIVER,
    "sdp01.dat": 406,
    "inv2543.dat": DELIVER,
    "test.dat": DROP,
}
RFC5118 = {
    "ipv6-good.sip": DELIVER,
    "ipv6-bad.sip": 400,
    "port-ambiguous.sip": DELIVER,
    "port-unambiguous.sip": DELIVER,
    "via-received-param-with-delim.sip": DELIVER,
    "via-received-param-no-delim.sip": DELIVER,
    "ipv6-in-sdp.sip": DELIVER,
    "mult-ip-in-header.sip": DELIVER,
    "mult-ip-in-sdp.sip": DELIVER,
    "ipv4-mapped-ipv6.sip": DELIVER,
    "ipv6-bug-abnf-3-colons.sip": DELIVER,
    "ipv6-correct-abnf-2-colons.sip": DELIVER,
}
CASES = [("rfc4475", n, e) for n, e in RFC4475.items()] + [
    ("rfc5118", n, e) for n, e in RFC5118.items()
]
SOURCE = Peer("UDP", "192.0.2.200", 5060)


def test_every_file_is_covered() -> None:
    for folder, table in (("rfc4475", RFC4475), ("rfc5118", RFC5118)):
        on_disk = {p.name for p in (TORTURE / folder).iterdir() if p.suffix in (".dat", ".sip")}
        assert on_disk == set(table)


@pytest.mark.parametrize(("folder", "name", "expected"), CASES, ids=[c[1] for c in CASES])
def test_torture_message(folder: str, name: str, expected: object) -> None:
    data = (TORTURE / folder / name).read_bytes()
    layer = TransactionLayer()
    layer.receive(data, SOURCE, now=0.0)
    sent = [_status_and_headers(wire) for wire, _ in layer.datagrams_to_send()]
    finals = [(status, headers) for status, headers in sent if status >= 200]
    events = []
    while (event := layer.next_event()) is not None:
        events.append(event)
    if expected == DELIVER:
        assert finals == []
        assert len(events) == 1 and isinstance(events[0], RequestReceived)
    elif expected in (DROP, PARSE):
        assert sent == []
        if expected == PARSE:
            assert isinstance(parse_message(data), Response)
            # a 2xx to an INVITE without a transaction goes up to the dialog layer, which drops
            # it when no dialog matches (RFC 6026 §7.2); anything else stops here
            assert all(isinstance(e, ResponseReceived) and e.transaction is None for e in events)
        else:
            with pytest.raises(SipParseError):
                message = parse_message(data)
                if isinstance(message, Response):
                    _ = message.cseq  # scalarlg: the overlarge CSeq is found when read
    else:
        assert events == []
        assert [status for status, _ in finals] == [expected]
        extra = {501: "allow", 420: "unsupported", 415: "accept", 406: "warning"}.get(
            int(str(expected))
        )
        if extra:
            assert extra in finals[0][1]


def _status_and_headers(wire: bytes) -> tuple[int, str]:
    """Status code and lower-cased header block of a response we sent. Our error responses
    copy the offending request's headers verbatim, so they need not re-parse."""
    head = wire.split(b"\r\n\r\n")[0].decode("utf-8", "replace")
    status_line, _, headers = head.partition("\r\n")
    return int(status_line.split(" ")[1]), headers.lower()


def test_request_details_survive_parsing() -> None:
    def load(folder: str, name: str) -> Request:
        message = parse_message((TORTURE / folder / name).read_bytes())
        assert isinstance(message, Request)
        return message

    escnull = load("rfc4475", "escnull.dat")
    assert [c.sip_uri.user for c in escnull.contacts] == ["\x00", "\x00\x00"]
    esc02 = load("rfc4475", "esc02.dat")
    assert len(esc02.contacts) == 2  # "C%6Fntact" is an unknown header, not a Contact
    semi = load("rfc4475", "semiuri.dat")
    assert semi.uri.user == "user;par=u@example.net"  # type: ignore[union-attr]
    wsinv = load("rfc4475", "wsinv.dat")
    assert [v.branch for v in wsinv.vias] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert wsinv.from_.display_name == 'J Rosenberg \\"'
    assert wsinv.to.tag == "1918181833n"
    dblreq = load("rfc4475", "dblreq.dat")
    assert dblreq.body == b""
    bad3 = load("rfc5118", "port-unambiguous.sip")
    assert (bad3.uri.host, bad3.uri.port) == ("[2001:db8::10]", 5070)  # type: ignore[union-attr]
    ambiguous = load("rfc5118", "port-ambiguous.sip")
    assert ambiguous.uri.port is None  # type: ignore[union-attr]
    esc01 = load("rfc4475", "esc01.dat")
    assert esc01.to.sip_uri.user == "user"
    assert esc01.contacts[0].sip_uri.params == (("lr", None), ("name", "value%41"))
