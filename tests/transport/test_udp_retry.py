"""Issue 14 item 14: a request the bot moved from UDP to TCP for its size (RFC 3261 §18.1.1)
is retried over UDP when the connection is refused, so a UDP-only softphone still gets it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from bot.sip import Headers, Request, make_response, parse_message, parse_uri
from bot.sip.transaction import Peer
from bot.transport.client import MTU_THRESHOLD
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.transport.test_loopback import FAST, Recorder

pytestmark = pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])

BODY = ("Your meetings: " + "Weekly sync, 10:00-11:00; " * 120)[:3000].encode()


def message(host: str, port: int, call_id: str) -> Request:
    headers = Headers.of(
        ("From", "<sip:bot@example.test>;tag=b1"),
        ("To", "<sip:alice@example.test>"),
        ("Call-ID", call_id),
        ("CSeq", "1 MESSAGE"),
        ("Content-Type", "text/plain;charset=utf-8"),
    )
    return Request("MESSAGE", parse_uri(f"sip:alice@{host}:{port}"), headers, BODY)


class UdpPhone(asyncio.DatagramProtocol):
    """A softphone that listens on UDP only: it answers every request 200."""

    def __init__(self) -> None:
        self.received: list[Request] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = parse_message(data)
        assert isinstance(request, Request) and self.transport is not None
        self.received.append(request)
        self.transport.sendto(make_response(request, 200).serialize(), addr)


@contextlib.asynccontextmanager
async def udp_phone_beside_a_closed_tcp_port() -> AsyncIterator[tuple[UdpPhone, int]]:
    """A UDP-only phone on a port whose TCP twin is bound and not listening: every connection
    to it is reset. The port is picked free for TCP, then taken on UDP - another one when UDP
    has it in use (a port free on one transport may be busy on the other)."""
    loop = asyncio.get_running_loop()
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                transport, phone = await loop.create_datagram_endpoint(
                    UdpPhone, local_addr=("127.0.0.1", port)
                )
            except OSError:
                continue
            try:
                yield phone, port
            finally:
                transport.close()
            return
    raise AssertionError("no port free on both TCP and UDP")


@contextlib.asynccontextmanager
async def udp_phone(port: int = 0) -> AsyncIterator[tuple[UdpPhone, int]]:
    loop = asyncio.get_running_loop()
    transport, phone = await loop.create_datagram_endpoint(UdpPhone, local_addr=("127.0.0.1", port))
    try:
        yield phone, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@pytest.fixture
async def client() -> AsyncIterator[SipEndpoint]:
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as endpoint:
        yield endpoint


async def test_long_request_reaches_a_udp_only_phone_after_tcp_is_refused(
    client: SipEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    async with udp_phone_beside_a_closed_tcp_port() as (phone, port):
        request = message("127.0.0.1", port, "long-udp")
        assert len(request.serialize()) > MTU_THRESHOLD
        response = await asyncio.wait_for(
            client.request(request, destination=Peer("UDP", "127.0.0.1", port)), 5
        )
    assert response.status == 200
    assert len(phone.received) == 1
    assert phone.received[0].body == BODY and phone.received[0].via.transport == "UDP"
    assert len(phone.received[0].vias) == 1  # the TCP try's Via replaced, not stacked
    assert "sip.request.retried_over_udp" in caplog.text


async def test_long_request_still_goes_over_tcp_to_a_tcp_capable_target(
    client: SipEndpoint,
) -> None:
    recorder = Recorder()
    listen = (Listen(transport="TCP", port=0),)
    async with SipEndpoint(EndpointConfig(listen=listen, timers=FAST), handler=recorder) as server:
        host, port = server.address("TCP")
        async with udp_phone(port) as (phone, _):  # the same port on UDP: must stay unused
            response = await asyncio.wait_for(
                client.request(
                    message(host, port, "long-tcp"), destination=Peer("UDP", host, port)
                ),
                5,
            )
    assert response.status == 200
    assert [seen.peer.transport for seen in recorder.seen] == ["TCP"]
    assert recorder.seen[0].request.body == BODY
    assert phone.received == []


async def test_a_target_that_asked_for_tcp_is_not_retried_over_udp(client: SipEndpoint) -> None:
    async with udp_phone_beside_a_closed_tcp_port() as (phone, port):
        response = await asyncio.wait_for(
            client.request(
                message("127.0.0.1", port, "tcp-only"),
                destination=Peer("TCP", "127.0.0.1", port),
            ),
            5,
        )
    assert response.status == 503
    assert phone.received == []


async def test_requests_to_udp_targets_leave_no_tls_name_behind(client: SipEndpoint) -> None:
    """Issue 19 item 1: a request routed by its Request-URI (RFC 3263: a numeric host, UDP)
    is delivered, and the endpoint remembers no TLS server name (RFC 5922 §4) per UDP peer:
    one entry per contact ever reached, for the bot's lifetime, on every pager reply."""
    async with udp_phone() as (phone, port):
        for n in range(3):
            request = message("127.0.0.1", port, f"by-uri-{n}")
            request.body = b"short"
            response = await asyncio.wait_for(client.request(request), 5)
            assert response.status == 200
    assert len(phone.received) == 3 and phone.received[0].via.transport == "UDP"
    assert [len(request.vias) for request in phone.received] == [1, 1, 1]  # ours, on top
    assert next(iter(phone.received[0].headers))[0].lower() == "via"
    assert client._server_names == {}
