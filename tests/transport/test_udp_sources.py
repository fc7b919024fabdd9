"""Issue 19 item 1: the UDP transport makes one Peer per recent source address, not one per
datagram, and keeps no more of them than KNOWN_SOURCES."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from bot.sip.transaction import Peer
from bot.transport import sockets
from bot.transport.sockets import UdpTransport

pytestmark = pytest.mark.asyncio(loop_factories=["uvloop", "asyncio"])


async def receive_from(senders: list[socket.socket], each: int) -> tuple[UdpTransport, list[Peer]]:
    seen: list[Peer] = []
    enough = asyncio.Event()

    def on_message(data: bytes, peer: Peer) -> None:
        seen.append(peer)
        if len(seen) == len(senders) * each:
            enough.set()

    udp = await UdpTransport.open("127.0.0.1", 0, on_message, lambda peer, reason: None)
    for sender in senders:
        for n in range(each):
            sender.sendto(b"OPTIONS %d" % n, udp.local)
    await asyncio.wait_for(enough.wait(), 5)
    return udp, seen


@pytest.fixture
def senders() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    for _ in range(3):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        made.append(sock)
    yield made
    for sock in made:
        sock.close()


async def test_one_peer_per_source(senders: list[socket.socket]) -> None:
    udp, seen = await receive_from(senders[:1], 3)
    udp.close()
    port = senders[0].getsockname()[1]
    assert seen == [Peer("UDP", "127.0.0.1", port)] * 3
    assert seen[0] is seen[1] is seen[2]


async def test_sources_kept_are_bounded(
    senders: list[socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sockets, "KNOWN_SOURCES", 2)
    udp, seen = await receive_from(senders, 1)
    udp.close()
    ports = {sock.getsockname()[1] for sock in senders}
    assert {peer.port for peer in seen} == ports and len(udp._sources) <= 2
