"""ICMP errors on the UDP socket (RFC 3261 §18.4: they are transport errors; §8.1.3.1: a 503 at
once), on both event loops: the error fails the peer it concerns and nobody else, the socket is
read on afterwards (uvloop's ``add_reader`` stopped reading it for good), and no error is left
raised to wake an idle loop over and over."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Iterator

import pytest

from bot.sip.transaction import Peer
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from bot.transport.sockets import REFUSED, UdpTransport
from tests.transport.test_loopback import FAST, Recorder, options

pytestmark = pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])

ICMP_REFUSED = f"{REFUSED} (ICMP unreachable)"


@pytest.fixture(params=["127.0.0.1", "::1"])
def host(request: pytest.FixtureRequest) -> str:
    """Loopback over IPv4 (ICMP, ``IP_RECVERR``) and IPv6 (ICMPv6, ``IPV6_RECVERR``)."""
    return str(request.param)


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@pytest.fixture
def closed_port(host: str) -> int:
    """A UDP port nothing listens on: a datagram to it is answered with ICMP port unreachable."""
    with socket.socket(family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener(host: str) -> Iterator[socket.socket]:
    """A plain UDP socket that only receives."""
    with socket.socket(family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.setblocking(False)
        yield sock


def error_raised(sock: socket.socket, wait: float = 0.0) -> bool:
    """Is ``EPOLLERR`` raised on ``sock`` (an ICMP error not read yet), waiting up to ``wait``
    seconds for it? While it is, a level-triggered loop is woken at every turn."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLERR)
    return any(events & select.POLLERR for _, events in poller.poll(wait * 1000))


async def idle_cpu(seconds: float) -> float:
    """CPU seconds this process uses while its loop has nothing to do for ``seconds`` (the
    quantity measured, not a wait for something to happen)."""
    started = time.process_time()
    await asyncio.sleep(seconds)
    return time.process_time() - started


async def test_icmp_unreachable_is_an_immediate_503_and_udp_is_still_answered(
    host: str, closed_port: int
) -> None:
    recorder = Recorder()
    listen = (Listen(host=host, port=0),)
    bot = SipEndpoint(EndpointConfig(listen=listen, timers=FAST), handler=recorder)
    phone = SipEndpoint(EndpointConfig(listen=listen, timers=FAST))
    async with bot, phone:
        _, port = bot.address()
        for attempt in range(3):
            started = time.monotonic()
            refused = await bot.request(
                options(host, closed_port, f"gone-{attempt}"),
                destination=Peer("UDP", host, closed_port),
            )
            assert refused.status == 503  # not 408 after 64*T1
            assert time.monotonic() - started < 1.0
            answered = await phone.request(
                options(host, port, f"asked-{attempt}"), destination=Peer("UDP", host, port)
            )
            assert answered.status == 200
        assert len(recorder.seen) == 3
        assert bot._udp is not None and not error_raised(bot._udp._sock)
        assert await idle_cpu(0.5) < 0.15  # a raised EPOLLERR spins a core: ~0.5


async def test_a_pending_icmp_error_fails_only_the_peer_it_concerns(
    host: str, closed_port: int, listener: socket.socket
) -> None:
    failures: list[tuple[Peer, str]] = []
    udp = await UdpTransport.open(
        host, 0, lambda data, peer: None, lambda peer, reason: failures.append((peer, reason))
    )
    try:
        gone = Peer("UDP", host, closed_port)
        other = Peer("UDP", host, int(listener.getsockname()[1]))
        udp.send(b"OPTIONS sip:gone", gone)
        # the loop does not run meanwhile: the ICMP error waits on the socket for the next send
        assert error_raised(udp._sock, wait=5)
        udp.send(b"MESSAGE sip:other", other)
        received = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(listener, 100), 5)
        assert received == b"MESSAGE sip:other"
        assert failures == [(gone, ICMP_REFUSED)]
        assert not error_raised(udp._sock)
        assert await idle_cpu(0.5) < 0.15
    finally:
        udp.close()


async def test_an_icmp_error_read_with_the_datagrams_goes_to_its_peer_and_reading_goes_on(
    host: str, closed_port: int, listener: socket.socket
) -> None:
    got: list[bytes] = []
    arrived = asyncio.Event()
    failed = asyncio.Event()
    failures: list[tuple[Peer, str]] = []

    def on_message(data: bytes, peer: Peer) -> None:
        got.append(data)
        arrived.set()

    def on_failure(peer: Peer, reason: str) -> None:
        failures.append((peer, reason))
        failed.set()

    udp = await UdpTransport.open(host, 0, on_message, on_failure)
    try:
        gone = Peer("UDP", host, closed_port)
        for n in range(3):
            arrived.clear()
            failed.clear()
            udp.send(b"OPTIONS sip:gone", gone)
            await asyncio.wait_for(failed.wait(), 5)
            listener.sendto(b"OPTIONS %d" % n, udp.local)
            await asyncio.wait_for(arrived.wait(), 5)
        assert got == [b"OPTIONS 0", b"OPTIONS 1", b"OPTIONS 2"]
        assert failures == [(gone, ICMP_REFUSED)] * 3
        assert not error_raised(udp._sock)
    finally:
        udp.close()


async def test_a_send_that_fails_by_itself_fails_its_peer(
    host: str, listener: socket.socket
) -> None:
    failures: list[tuple[Peer, str]] = []
    udp = await UdpTransport.open(
        host, 0, lambda data, peer: None, lambda peer, reason: failures.append((peer, reason))
    )
    try:
        too_big = Peer("UDP", host, int(listener.getsockname()[1]))
        udp.send(b"x" * 70000, too_big)  # more than a datagram holds: EMSGSIZE
        assert [(peer, reason.split(":")[0]) for peer, reason in failures] == [
            (too_big, "send failed")
        ]
        assert not error_raised(udp._sock)
    finally:
        udp.close()
