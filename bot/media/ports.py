"""RTP/RTCP port pairs from the configured range (RFC 3550 §11: RTP on an even port, RTCP on
the odd port above it)."""

from __future__ import annotations

import asyncio
import errno
import functools
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from bot.errors import Refusal


class PortError(Refusal):
    """RTP ports cannot be had: the message says why, for a person."""


class NoFreePort(PortError):
    """Every even port of the range is taken (by our calls or by other programs)."""


BUSY = (errno.EADDRINUSE, errno.EACCES)
"""Bind errors that concern one port only: try the next pair. Any other (an address not on
this machine, say) fails every port alike."""


class _Watched(asyncio.DatagramProtocol):
    """The caller's protocol, plus a future that completes once the socket is really closed
    (``transport.close()`` only schedules that)."""

    def __init__(self, inner: asyncio.DatagramProtocol) -> None:
        self.inner = inner
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(cast(asyncio.DatagramTransport, transport))

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inner.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.inner.error_received(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self.inner.connection_lost(exc)


@dataclass(slots=True, kw_only=True)
class PortPair:
    """A bound RTP socket and its RTCP neighbour; ``aclose()`` closes both and frees the pair
    once the sockets are really gone."""

    port: int
    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    closed: asyncio.Future[tuple[None, None]]
    """Done when both sockets are closed (the range takes the pair back then)."""

    async def aclose(self) -> None:
        self.rtp.close()
        self.rtcp.close()
        await asyncio.shield(self.closed)


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

    def _release(self, port: int, _: object) -> None:
        self._in_use.discard(port)

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
            rtp_watch, rtcp_watch = _Watched(rtp()), _Watched(rtcp())
            try:
                rtp_transport, rtcp_transport = await _bind_pair(host, port, rtp_watch, rtcp_watch)
            except OSError as exc:
                self._in_use.discard(port)
                if exc.errno in BUSY:
                    continue
                raise PortError(f"Cannot open RTP ports on {host}: {exc.strerror}.") from exc
            except BaseException:
                self._in_use.discard(port)
                raise
            closed = asyncio.gather(rtp_watch.lost, rtcp_watch.lost)
            closed.add_done_callback(functools.partial(self._release, port))
            return PortPair(port=port, rtp=rtp_transport, rtcp=rtcp_transport, closed=closed)
        raise NoFreePort(
            f"No free RTP port in {self.low}-{self.high} on {host}: "
            f"{len(self._in_use)} calls hold ports and the rest are taken by other programs."
        )


async def _bind_pair(
    host: str, port: int, rtp: _Watched, rtcp: _Watched
) -> tuple[asyncio.DatagramTransport, asyncio.DatagramTransport]:
    """Both sockets bound, or neither (the RTP one is closed if RTCP's bind fails)."""
    loop = asyncio.get_running_loop()
    rtp_transport, _ = await loop.create_datagram_endpoint(lambda: rtp, sock=_bound(host, port))
    try:
        rtcp_transport, _ = await loop.create_datagram_endpoint(
            lambda: rtcp, sock=_bound(host, port + 1)
        )
    except BaseException:
        rtp_transport.close()
        raise
    return rtp_transport, rtcp_transport


def _bound(host: str, port: int) -> socket.socket:
    """A UDP socket bound to (host, port), bound here rather than by the loop: uvloop's
    ``local_addr`` reports a failed bind without its errno, and the errno says whether to try
    the next pair (BUSY) and what to tell the user."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
