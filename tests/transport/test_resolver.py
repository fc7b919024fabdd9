"""RFC 3263 server location against a small DNS server on loopback (dnspython on both sides)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sip import Headers, Request, SipUri, make_response, parse_uri
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from bot.transport.resolver import Resolver
from tests.doubles.dns import FakeDns, Zone, serving

ZONE: Zone = {
    ("example.test.", "NAPTR"): [
        '10 50 "s" "SIPS+D2T" "" _sips._tcp.example.test.',
        '20 50 "s" "SIP+D2U" "" _sip._udp.example.test.',
    ],
    ("_sips._tcp.example.test.", "SRV"): ["0 5 5061 sip1.example.test."],
    ("_sip._udp.example.test.", "SRV"): [
        "0 5 5060 sip1.example.test.",
        "1 5 5062 sip2.example.test.",
    ],
    ("sip1.example.test.", "A"): ["127.0.0.11"],
    ("sip2.example.test.", "A"): ["127.0.0.12"],
    ("sip2.example.test.", "AAAA"): ["::1"],
    ("_sipinternaltls._tcp.lync.test.", "SRV"): ["0 0 5061 pool.lync.test."],
    ("pool.lync.test.", "A"): ["127.0.0.21"],
    ("plain.test.", "A"): ["127.0.0.31"],
}


@pytest.fixture
async def dns_server() -> AsyncIterator[tuple[FakeDns, int]]:
    async with serving(ZONE) as server:
        yield server


def uri(text: str) -> SipUri:
    parsed = parse_uri(text)
    assert isinstance(parsed, SipUri)
    return parsed


async def test_naptr_then_srv_then_addresses_in_order(dns_server: tuple[FakeDns, int]) -> None:
    _, port = dns_server
    resolver = Resolver(nameservers=["127.0.0.1"], port=port)
    targets = await resolver.resolve(uri("sip:bot@example.test"))
    assert [t.peer for t in targets] == [
        Peer("TLS", "127.0.0.11", 5061),
        Peer("UDP", "127.0.0.11", 5060),
        Peer("UDP", "127.0.0.12", 5062),
        Peer("UDP", "::1", 5062),
    ]
    assert targets[0].server_name == "sip1.example.test"  # TLS verifies the SRV target name


async def test_sips_uses_only_tls(dns_server: tuple[FakeDns, int]) -> None:
    _, port = dns_server
    targets = await Resolver(nameservers=["127.0.0.1"], port=port).resolve(
        uri("sips:bot@example.test")
    )
    assert {t.peer.transport for t in targets} == {"TLS"}


async def test_skype_for_business_internal_tls_srv(dns_server: tuple[FakeDns, int]) -> None:
    _, port = dns_server
    targets = await Resolver(nameservers=["127.0.0.1"], port=port).resolve(
        uri("sip:user@lync.test")
    )
    assert [t.peer for t in targets] == [Peer("TLS", "127.0.0.21", 5061)]
    assert targets[0].server_name == "pool.lync.test"


async def test_no_srv_falls_back_to_a_records_and_explicit_port_skips_srv(
    dns_server: tuple[FakeDns, int],
) -> None:
    server, port = dns_server
    resolver = Resolver(nameservers=["127.0.0.1"], port=port)
    assert [t.peer for t in await resolver.resolve(uri("sip:x@plain.test"))] == [
        Peer("UDP", "127.0.0.31", 5060)
    ]
    server.queries.clear()
    targets = await resolver.resolve(uri("sip:x@plain.test:5080;transport=tcp"))
    assert [t.peer for t in targets] == [Peer("TCP", "127.0.0.31", 5080)]
    assert {q[1] for q in server.queries} <= {"A", "AAAA"}


async def test_numeric_hosts_skip_dns(dns_server: tuple[FakeDns, int]) -> None:
    server, port = dns_server
    resolver = Resolver(nameservers=["127.0.0.1"], port=port)
    assert [t.peer for t in await resolver.resolve(uri("sips:a@[::1]"))] == [
        Peer("TLS", "::1", 5061)
    ]
    assert [t.peer for t in await resolver.resolve(uri("sip:a@127.0.0.5:5099"))] == [
        Peer("UDP", "127.0.0.5", 5099)
    ]
    assert server.queries == []


async def test_failover_to_the_next_target_after_a_timeout(dns_server: tuple[FakeDns, int]) -> None:
    """sip1 (127.0.0.41) never answers; sip2 (127.0.0.42) does: the request still succeeds."""
    _, dns_port = dns_server
    seen: list[str] = []

    def handler(incoming: ServerRequest) -> object:
        seen.append(incoming.request.call_id)
        return make_response(incoming.request, 200)

    timers = TimerConfig(t1=0.02, t2=0.2, t4=0.2)
    live = SipEndpoint(
        EndpointConfig(listen=(Listen(host="127.0.0.42", port=0),), timers=timers), handler=handler
    )
    async with live:
        live_port = live.address()[1]
        ZONE[("failover.test.", "NAPTR")] = []
        ZONE[("_sip._udp.failover.test.", "SRV")] = [
            f"0 5 {live_port} dead.failover.test.",
            f"1 5 {live_port} live.failover.test.",
        ]
        ZONE[("dead.failover.test.", "A")] = ["127.0.0.41"]
        ZONE[("live.failover.test.", "A")] = ["127.0.0.42"]
        resolver = Resolver(nameservers=["127.0.0.1"], port=dns_port, transports=("UDP",))
        client = SipEndpoint(
            EndpointConfig(listen=(Listen(port=0),), timers=timers), resolver=resolver
        )
        async with client:
            request = Request(
                "OPTIONS",
                parse_uri("sip:bot@failover.test"),
                Headers.of(
                    ("From", "<sip:a@example.test>;tag=1"),
                    ("To", "<sip:bot@failover.test>"),
                    ("Call-ID", "failover-1"),
                    ("CSeq", "1 OPTIONS"),
                ),
            )
            response = await client.request(request)
            assert response.status == 200
            assert seen == ["failover-1"]
