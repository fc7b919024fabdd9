"""The endpoint over real sockets on loopback: UDP, TCP, TLS (IPv4 and IPv6), on free ports."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme

from bot.sip import Headers, Request, Response, make_response, parse_message, parse_uri
from bot.sip.digest import DigestClient, DigestServer
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from bot.transport.resolver import Target
from bot.transport.tls import TlsConfig

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def options(host: str, port: int, call_id: str = "c1", size: int = 0) -> Request:
    headers = Headers.of(
        ("From", "<sip:alice@example.test>;tag=a1"),
        ("To", "<sip:bot@example.test>"),
        ("Call-ID", call_id),
        ("CSeq", "1 OPTIONS"),
    )
    if size:
        headers.add("X-Padding", "p" * size)
    uri_host = f"[{host}]" if ":" in host else host
    return Request("OPTIONS", parse_uri(f"sip:bot@{uri_host}:{port}"), headers)


def ok_for(head: bytes) -> bytes:
    """A 200 to the request whose header block is ``head``, written by hand (a peer that is not
    our endpoint)."""
    kept = (b"via", b"from", b"to", b"call-id", b"cseq")
    lines = [line for line in head.split(b"\r\n")[1:] if line.split(b":")[0].lower() in kept]
    return b"\r\n".join([b"SIP/2.0 200 OK", *lines, b"Content-Length: 0", b"", b""])


class Recorder:
    """A handler that answers 200 and remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[ServerRequest] = []

    def __call__(self, request: ServerRequest) -> Response:
        self.seen.append(request)
        response = make_response(request.request, 200)
        response.headers.add("X-Seen-Via", request.request.headers.get("via") or "")
        return response


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SipEndpoint, SipEndpoint, Recorder]]:
    recorder = Recorder()
    listen = tuple(Listen(transport=t, port=0) for t in ("UDP", "TCP"))
    server = SipEndpoint(EndpointConfig(listen=listen, timers=FAST), handler=recorder)
    client = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))
    async with server, client:
        yield server, client, recorder


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_request_and_response(
    pair: tuple[SipEndpoint, SipEndpoint, Recorder], transport: str
) -> None:
    server, client, recorder = pair
    host, port = server.address(transport)
    response = await client.request(options(host, port), destination=Peer(transport, host, port))
    assert response.status == 200
    assert len(recorder.seen) == 1 and recorder.seen[0].peer.transport == transport


async def test_rport_and_received_are_filled_in(
    pair: tuple[SipEndpoint, SipEndpoint, Recorder],
) -> None:
    server, client, _ = pair
    host, port = server.address("UDP")
    response = await client.request(options(host, port), destination=Peer("UDP", host, port))
    seen_via = response.headers.get("x-seen-via") or ""
    assert f"rport={client.address('UDP')[1]}" in seen_via  # RFC 3581 §4


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_each_request_carries_one_via_ours_with_a_fresh_branch(
    pair: tuple[SipEndpoint, SipEndpoint, Recorder], transport: str
) -> None:
    """RFC 3261 §8.1.1.7: one Via, ours (our address over that transport, rport as RFC 3581
    asks), with a new RFC 3261 branch per request; written as text on the way out, it reads
    exactly as the Via object the endpoint builds."""
    server, client, recorder = pair
    host, port = server.address(transport)
    for _ in range(2):
        request = options(host, port)
        request.headers.add("Via", "SIP/2.0/UDP stale.test;branch=z9hG4bKold")
        response = await client.request(request, destination=Peer(transport, host, port))
        assert response.status == 200
    first, second = (seen.request for seen in recorder.seen)
    ours = client.via(transport)
    for seen in (first, second):
        [via] = seen.vias
        assert (via.transport, via.host, via.port) == (ours.transport, ours.host, ours.port)
        assert via.rfc3261_branch is not None and via.param("rport") is not None
    assert first.via.branch != second.via.branch
    assert ours.branch is not None and client.via_text(transport, ours.branch) == str(ours)


async def test_a_route_naming_us_is_consumed_and_others_are_left(
    pair: tuple[SipEndpoint, SipEndpoint, Recorder],
) -> None:
    server, client, recorder = pair
    host, port = server.address("UDP")
    request = options(host, port)
    request.headers.add("Route", f"<sip:{host}:{port};transport=udp;lr>")  # as Linphone does
    request.headers.add("Route", "<sip:elsewhere.test;lr>")
    response = await client.request(request, destination=Peer("UDP", host, port))
    assert response.status == 200
    assert recorder.seen[0].request.headers.values("route") == ["<sip:elsewhere.test;lr>"]


async def test_large_request_moves_to_tcp(pair: tuple[SipEndpoint, SipEndpoint, Recorder]) -> None:
    server, client, recorder = pair
    host, tcp_port = server.address("TCP")
    response = await client.request(
        options(host, tcp_port, size=1400), destination=Peer("UDP", host, tcp_port)
    )
    assert response.status == 200
    assert recorder.seen[0].peer.transport == "TCP"  # RFC 3261 §18.1.1
    assert recorder.seen[0].request.via.transport == "TCP"


async def test_tcp_connection_is_reused(pair: tuple[SipEndpoint, SipEndpoint, Recorder]) -> None:
    server, client, recorder = pair
    host, port = server.address("TCP")
    for i in range(5):
        await client.request(options(host, port, f"reuse-{i}"), destination=Peer("TCP", host, port))
    assert len({r.peer for r in recorder.seen}) == 1
    assert client.connection_count == 1


async def test_timeout_becomes_408_and_unreachable_tcp_becomes_503() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as client:
            port = silent.getsockname()[1]
            timed_out = await client.request(
                options("127.0.0.1", port), destination=Peer("UDP", "127.0.0.1", port)
            )
            assert timed_out.status == 408
            port = closed.getsockname()[1]
            refused = await client.request(
                options("127.0.0.1", port), destination=Peer("TCP", "127.0.0.1", port)
            )
            assert refused.status == 503
    finally:
        silent.close()
        closed.close()


async def test_ipv6_udp_and_tcp() -> None:
    recorder = Recorder()
    listen = tuple(Listen(transport=t, host="::1", port=0) for t in ("UDP", "TCP"))
    server = SipEndpoint(EndpointConfig(listen=listen, timers=FAST), handler=recorder)
    client = SipEndpoint(EndpointConfig(listen=(Listen(host="::1", port=0),), timers=FAST))
    async with server, client:
        for transport in ("UDP", "TCP"):
            host, port = server.address(transport)
            response = await client.request(
                options(host, port), destination=Peer(transport, host, port)
            )
            assert response.status == 200
        assert recorder.seen[0].request.via.host == f"[{client.address('UDP')[0]}]"


async def test_digest_challenge_is_answered_once() -> None:
    digest = DigestServer("example.test")
    loop = asyncio.get_running_loop()

    def handler(incoming: ServerRequest) -> Response:
        verdict = digest.verify(
            incoming.request, {"alice": "pw"}.get, loop.time(), source=incoming.peer.host
        )
        if verdict.ok:
            return make_response(incoming.request, 200)
        response = make_response(incoming.request, 401)
        for value in digest.challenges(loop.time(), source=incoming.peer.host, stale=verdict.stale):
            response.headers.add("WWW-Authenticate", value)
        return response

    server = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=handler)
    client = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))
    async with server, client:
        host, port = server.address()
        peer = Peer("UDP", host, port)
        good = await client.request(
            options(host, port, "auth-1"), destination=peer, credentials=DigestClient("alice", "pw")
        )
        assert good.status == 200
        bad = await client.request(
            options(host, port, "auth-2"),
            destination=peer,
            credentials=DigestClient("alice", "nope"),
        )
        assert bad.status == 401  # tried once, then gave up: no loop of challenges


async def test_handler_crash_is_answered_500_and_the_endpoint_lives_on() -> None:
    def broken(incoming: ServerRequest) -> Response:
        raise RuntimeError("boom")

    server = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=broken)
    client = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))
    async with server, client:
        host, port = server.address()
        for call_id in ("crash-1", "crash-2"):
            response = await client.request(
                options(host, port, call_id), destination=Peer("UDP", host, port)
            )
            assert response.status == 500


async def test_malformed_datagram_gets_400_from_a_raw_socket(
    pair: tuple[SipEndpoint, SipEndpoint, Recorder],
) -> None:
    server, _, recorder = pair
    host, port = server.address("UDP")
    request = options(host, port)
    request.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:9;rport;branch=z9hG4bKraw")
    request.headers.set("CSeq", "1 INVITE")  # CSeq method differs from the request's: 400
    reply = await udp_exchange(request.serialize(), host, port)
    assert reply.startswith(b"SIP/2.0 400")
    assert recorder.seen == []


async def udp_exchange(data: bytes, host: str, port: int) -> bytes:
    """Send one datagram from a fresh socket and wait for the answer (the Via asks for rport,
    so it comes back to this socket rather than to the Via's port)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Once(asyncio.DatagramProtocol):
        def datagram_received(self, reply: bytes, addr: object) -> None:
            if not got.done():
                got.set_result(reply)

    transport, _ = await loop.create_datagram_endpoint(Once, local_addr=("127.0.0.1", 0))
    try:
        transport.sendto(data, (host, port))
        return await asyncio.wait_for(got, 5)
    finally:
        transport.close()


async def test_tcp_keepalive_ping_is_answered_with_pong(
    pair: tuple[SipEndpoint, SipEndpoint, Recorder],
) -> None:
    server, _, _ = pair
    host, port = server.address("TCP")
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"\r\n\r\n")  # RFC 5626 §3.5.1 ping
    assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
    writer.close()


async def test_oversized_stream_message_is_refused_with_413_and_closed(
    pair: tuple[SipEndpoint, SipEndpoint, Recorder],
) -> None:
    server, _, recorder = pair
    host, port = server.address("TCP")
    reader, writer = await asyncio.open_connection(host, port)
    request = options(host, port)
    request.headers.add("Via", "SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKbig")
    head = request.serialize().replace(b"Content-Length: 0", b"Content-Length: 50000000")
    writer.write(head)
    reply = await asyncio.wait_for(reader.read(), 5)  # read() to EOF: the server closes
    assert reply.startswith(b"SIP/2.0 413")
    assert recorder.seen == []
    writer.close()


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_pair(ca: trustme.CA, tmp: Path, name: str, *hostnames: str) -> tuple[Path, Path]:
    cert = ca.issue_cert(*hostnames)
    certfile, keyfile = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert.private_key_pem.write_to_path(str(keyfile))
    certfile.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return certfile, keyfile


async def tls_pair(
    tmp: Path,
    server_tls: TlsConfig,
    client_tls: TlsConfig,
    handler: Callable[[ServerRequest], Response],
) -> tuple[SipEndpoint, SipEndpoint]:
    server = SipEndpoint(
        EndpointConfig(listen=(Listen(transport="TLS", port=0),), tls=server_tls, timers=FAST),
        handler=handler,
    )
    client = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), tls=client_tls, timers=FAST))
    await server.start()
    await client.start()
    return server, client


async def test_tls_verifies_the_server_and_sends_sni(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = write_pair(ca, tmp_path, "server", "sip.example.test", "127.0.0.1")
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    names: list[str | None] = []
    # the server is a plain asyncio TLS server (not our endpoint): its SNI callback is public
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    requests: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head)
        writer.write(ok_for(head))
        await writer.drain()
        await reader.read()  # until the client closes its flow

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    config = EndpointConfig(listen=(Listen(port=0),), tls=TlsConfig(cafile=cafile), timers=FAST)
    async with server, SipEndpoint(config) as client:
        target = Target(Peer("TLS", "127.0.0.1", port), "sip.example.test")
        response = await client.request(options("127.0.0.1", port), destination=target)
        assert response.status == 200
        assert names == ["sip.example.test"]
        assert b"SIP/2.0/TLS " in requests[0]  # RFC 3261 §18.1.1: the Via names TLS


async def test_tls_peer_with_an_untrusted_certificate_is_refused(
    ca: trustme.CA, tmp_path: Path
) -> None:
    rogue = trustme.CA()
    certfile, keyfile = write_pair(rogue, tmp_path, "rogue", "127.0.0.1")
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    recorder = Recorder()
    server, client = await tls_pair(
        tmp_path, TlsConfig(certfile=certfile, keyfile=keyfile), TlsConfig(cafile=cafile), recorder
    )
    try:
        host, port = server.address("TLS")
        response = await client.request(options(host, port), destination=Peer("TLS", host, port))
        assert response.status == 503 and "certificate" in response.reason.lower()
        assert recorder.seen == []
    finally:
        await client.close()
        await server.close()


async def test_tls_wrong_host_name_is_refused(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = write_pair(ca, tmp_path, "other", "other.example.test")
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    server, client = await tls_pair(
        tmp_path,
        TlsConfig(certfile=certfile, keyfile=keyfile),
        TlsConfig(cafile=cafile),
        Recorder(),
    )
    try:
        host, port = server.address("TLS")
        response = await client.request(options(host, port), destination=Peer("TLS", host, port))
        assert response.status == 503
    finally:
        await client.close()
        await server.close()


async def test_mutual_tls_requires_and_accepts_a_client_certificate(
    ca: trustme.CA, tmp_path: Path
) -> None:
    server_cert, server_key = write_pair(ca, tmp_path, "server", "127.0.0.1")
    client_cert, client_key = write_pair(ca, tmp_path, "app", "bot.example.test")
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    server_tls = TlsConfig(
        certfile=server_cert, keyfile=server_key, cafile=cafile, require_client_cert=True
    )
    recorder = Recorder()
    # without a client certificate: refused
    server, anonymous = await tls_pair(tmp_path, server_tls, TlsConfig(cafile=cafile), recorder)
    try:
        host, port = server.address("TLS")
        refused = await anonymous.request(
            options(host, port, "anon"), destination=Peer("TLS", host, port)
        )
        assert refused.status in (408, 503)
        assert recorder.seen == []
        trusted = SipEndpoint(
            EndpointConfig(
                listen=(Listen(port=0),),
                timers=FAST,
                tls=TlsConfig(cafile=cafile, certfile=client_cert, keyfile=client_key),
            )
        )
        async with trusted:
            response = await trusted.request(
                options(host, port, "mtls"), destination=Peer("TLS", host, port)
            )
            assert response.status == 200
        assert recorder.seen[0].peer.transport == "TLS"
    finally:
        await anonymous.close()
        await server.close()


def test_default_client_context_verifies() -> None:
    from bot.transport.tls import client_context

    context = client_context(TlsConfig())
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_parse_of_our_own_wire() -> None:
    # the helper request serializes into something our parser takes back unchanged
    request = options("127.0.0.1", 5060)
    request.headers.add("Via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx")
    assert parse_message(request.serialize()) == request


async def test_client_connections_send_keepalive_pings_and_drop_dead_flows() -> None:
    """RFC 5626 §3.5.1/§4.4.1: we ping flows we opened; a flow that stops answering is closed."""
    pings = 0
    closed = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pings
        writer.write(ok_for(await reader.readuntil(b"\r\n\r\n")))  # the request that opened it
        while data := await reader.read(4096):
            for _ in range(data.count(b"\r\n\r\n")):
                pings += 1
                if pings <= 2:  # answer two pings, then play dead
                    writer.write(b"\r\n")
        closed.set()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = EndpointConfig(listen=(Listen(port=0),), timers=FAST, keepalive_interval=0.05)
    async with server, SipEndpoint(config) as client:
        opened = await client.request(
            options("127.0.0.1", port), destination=Peer("TCP", "127.0.0.1", port)
        )
        assert opened.status == 200
        await asyncio.wait_for(closed.wait(), 5)
    assert pings >= 3  # answered, answered, unanswered: then we closed the flow
