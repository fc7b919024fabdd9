"""A UDP socket on loopback playing the far end of a call: it keeps what arrives, with the
arrival time, and sends what the test tells it to."""

from __future__ import annotations

import asyncio
import time
from typing import cast

Address = tuple[str, int]


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrivals: asyncio.Queue[tuple[float, bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls) -> Peer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return peer

    @property
    def address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.arrivals.put_nowait((time.monotonic(), data, addr))

    def send(self, data: bytes, to: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, to)

    async def receive(self, timeout: float = 5.0) -> tuple[float, bytes, Address]:
        return await asyncio.wait_for(self.arrivals.get(), timeout)

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()
