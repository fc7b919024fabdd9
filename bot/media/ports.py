"""RTP/RTCP port pairs from the configured range (RFC 3550 §11: RTP on an even port, RTCP on
the odd port above it)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import Refusal


class NoFreePort(Refusal):
    """Every even port of the range is taken (by our calls or by other programs)."""


@dataclass(slots=True, kw_only=True)
class PortPair:
    """A bound RTP socket and its RTCP neighbour; ``close()`` closes both and frees the pair."""

    port: int
    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    _release: Callable[[int], None]
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.rtp.close()
        self.rtcp.close()
        self._release(self.port)


class PortRange:
    """The even ports of [low, high] whose odd neighbour is also in range. Tries them from a
    random start, skipping ports in use here or bound by another program."""

    def __init__(self, low: int, high: int) -> None:
        first = low + low % 2
        self.low, self.high = low, high
        self._candidates = list(range(first, high, 2))  # p and p + 1 both ≤ high
        if not self._candidates:
            raise ValueError(f"port range {low}-{high} holds no even/odd pair")
        self._in_use: set[int] = set()

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    async def open(
        self,
        host: str,
        rtp: Callable[[], asyncio.DatagramProtocol],
        rtcp: Callable[[], asyncio.DatagramProtocol],
    ) -> PortPair:
        """Bind a free pair on ``host``; NoFreePort when none is left."""
        start = secrets.randbelow(len(self._candidates))
        for i in range(len(self._candidates)):
            port = self._candidates[(start + i) % len(self._candidates)]
            if port in self._in_use:
                continue
            self._in_use.add(port)
            try:
                rtp_transport, rtcp_transport = await _bind_pair(host, port, rtp, rtcp)
            except OSError:
                self._in_use.discard(port)
                continue
            except BaseException:
                self._in_use.discard(port)
                raise
            return PortPair(
                port=port, rtp=rtp_transport, rtcp=rtcp_transport, _release=self._release
            )
        raise NoFreePort(
            f"No free RTP port in {self.low}-{self.high} on {host}: "
            f"{len(self._in_use)} calls hold ports and the rest are taken by other programs."
        )

    def _release(self, port: int) -> None:
        self._in_use.discard(port)


async def _bind_pair(
    host: str,
    port: int,
    rtp: Callable[[], asyncio.DatagramProtocol],
    rtcp: Callable[[], asyncio.DatagramProtocol],
) -> tuple[asyncio.DatagramTransport, asyncio.DatagramTransport]:
    """Both sockets bound, or neither (the RTP one is closed if RTCP's bind fails)."""
    loop = asyncio.get_running_loop()
    rtp_transport, _ = await loop.create_datagram_endpoint(rtp, local_addr=(host, port))
    try:
        rtcp_transport, _ = await loop.create_datagram_endpoint(rtcp, local_addr=(host, port + 1))
    except BaseException:
        rtp_transport.close()
        raise
    return rtp_transport, rtcp_transport
