"""The asyncio sockets under the SIP core: UDP, and TCP/TLS with one connection per peer.

They only move bytes: each received message goes to ``on_message(data, peer)``; a peer that
cannot be reached is reported to ``on_failure(peer, reason)``. Everything SIP happens above.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import struct
from asyncio import selector_events
from collections.abc import Callable
from typing import cast

from bot.sip.errors import SipParseError
from bot.sip.framing import KeepAlive, StreamFramer
from bot.sip.layer import MAX_MESSAGE_SIZE
from bot.sip.message import Request, make_response
from bot.sip.transaction import Peer
from bot.transport.limits import Admit, ConnectionGate, ProgressClock, StreamLimits

log = logging.getLogger(__name__)
OnMessage = Callable[[bytes, Peer], None]
OnFailure = Callable[[Peer, str], None]


REFUSED = "connection refused"
"""How a failure reason starts when the peer refused the connection outright."""
_REFUSALS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ENOPROTOOPT, errno.EPROTONOSUPPORT}
)
"""RFC 3261 §18.1.1: a TCP reset or an ICMP Protocol Not Supported while connecting (Linux
reports the ICMP one as ENOPROTOOPT)."""


def refused(reason: str) -> bool:
    """Did the failure ``reason`` come from a peer refusing the connection (not a timeout, not
    TLS, not a connection lost later)?"""
    return reason.startswith(REFUSED)


def _peer(transport: str, address: tuple[object, ...]) -> Peer:
    return Peer(transport, str(address[0]), int(str(address[1])))


SOCKET_BUFFER = 4 * 1024 * 1024
"""UDP socket buffers asked for, in bytes: a burst of requests waits in the kernel instead of
being dropped (the kernel caps it at net.core.rmem_max / wmem_max)."""
IP_RECVERR, IPV6_RECVERR = 11, 25
"""Linux <linux/in.h>, <linux/in6.h> (not in Python's socket module): without them an
unconnected UDP socket is never told of an ICMP error (ip(7), "IP_RECVERR")."""
_EXTENDED_ERROR = struct.Struct("=IBBBB")
"""The head of Linux's ``struct sock_extended_err`` (<linux/errqueue.h>): errno, origin, ICMP
type and code, padding."""
_ICMP_ORIGINS = frozenset({2, 3})
"""``SO_EE_ORIGIN_ICMP`` and ``SO_EE_ORIGIN_ICMP6``: the error came from the network, not from
this host refusing a datagram we tried to send (``SO_EE_ORIGIN_LOCAL``, which that send
already reported)."""

MAX_DATAGRAMS_PER_WAKEUP = 64
"""UDP datagrams read per readiness event: one event loop turn then serves a burst."""
KNOWN_SOURCES = 4096
"""UDP source addresses whose Peer is kept for the next datagram from them (all forgotten
when more come: a Peer is only a value, made again when needed)."""


class UdpTransport(asyncio.DatagramProtocol):
    """One UDP socket: datagrams in, datagrams out (RFC 3261 §18.1.1, §18.2.1).

    On asyncio's own (selector) loop it reads the socket itself (``loop.add_reader``) so that
    one wake-up drains a burst of datagrams, where asyncio's datagram transport reads one per
    loop turn. On uvloop it is the protocol of uvloop's datagram transport (libuv ``uv_udp``,
    up to 32 datagrams per wake-up): uvloop's ``add_reader`` is libuv's ``uv_poll``, which
    stops watching a socket for good on ``EPOLLERR`` - and ``IP_RECVERR`` raises that for every
    ICMP error - where ``uv_udp`` reads on, handing the error to :meth:`error_received`.

    Either way, datagrams leave through our own socket object (uvloop's send reports an error
    without the peer it was for), so a failed send is known to be for the peer it was sent
    to. A datagram the kernel cannot take right now is dropped like any lost datagram: the
    transaction layer retransmits.

    With ``IP_RECVERR`` the kernel keeps each ICMP error in the socket's error queue and also
    marks the socket (``sk_err``): the next receive *or send*, whatever peer it is for, fails
    with that error once, and ``EPOLLERR`` stays raised until the queue is read. So whoever
    meets the error reads the whole queue (:meth:`_read_errors`): each error goes to the peer
    it concerns, and an idle loop is not woken again and again.
    """

    def __init__(self, sock: socket.socket, on_message: OnMessage, on_failure: OnFailure):
        self._sock = sock
        self._on_message = on_message
        self._on_failure = on_failure
        self._loop = asyncio.get_running_loop()
        self._datagrams: asyncio.BaseTransport | None = None
        """uvloop's datagram transport reading the socket, when the loop is uvloop."""
        self._sources: dict[object, Peer] = {}
        """The Peer of each recent source address: one per datagram cost a dataclass init."""
        self.send_drops = 0
        """Datagrams the kernel refused (its buffer was full)."""

    @classmethod
    async def open(
        cls, host: str, port: int, on_message: OnMessage, on_failure: OnFailure
    ) -> UdpTransport:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            _grow_buffers(sock)
            _receive_errors(sock, family)
            sock.bind((host, port))
            udp = cls(sock, on_message, on_failure)
            await udp._start_reading()
        except OSError:
            sock.close()
            raise
        return udp

    async def _start_reading(self) -> None:
        if isinstance(self._loop, selector_events.BaseSelectorEventLoop):
            self._loop.add_reader(self._sock.fileno(), self._readable)
        else:
            # uvloop closes the socket it is given a loop turn after it is told to: it gets a
            # descriptor of its own, and ours is closed at once by close()
            reader = self._sock.dup()
            try:
                await self._loop.create_datagram_endpoint(lambda: self, sock=reader)
            except BaseException:
                reader.close()
                raise

    @property
    def local(self) -> tuple[str, int]:
        address = self._sock.getsockname()
        return str(address[0]), int(address[1])

    @property
    def is_open(self) -> bool:
        return self._sock.fileno() >= 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._datagrams = transport

    def _readable(self) -> None:
        for _ in range(MAX_DATAGRAMS_PER_WAKEUP):
            try:
                data, addr = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._read_errors()
                continue
            self.datagram_received(data, addr)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # a keep-alive (RFC 5626 §3.5.1 style CRLFs, or NAT-refresh zeros)
        peer = self._sources.get(addr)
        if peer is None:
            if len(self._sources) >= KNOWN_SOURCES:
                self._sources.clear()
            peer = self._sources[addr] = _peer("UDP", addr)
        self._on_message(data, peer)

    def error_received(self, exc: Exception) -> None:
        """uvloop read an error instead of a datagram: an ICMP error is queued."""
        self._read_errors()

    def _read_errors(self) -> None:
        """ICMP errors (port or host unreachable) for datagrams we sent, each with the address
        it was sent to: a transport error for that peer, which RFC 3261 §8.1.3.1 turns into a
        503 at once instead of a timeout after 64*T1 (§18.4: ICMP errors are transport errors).
        The queue is read to the end: ``EPOLLERR`` is raised while anything is left in it."""
        while True:
            try:
                _, ancillary, _, addr = self._sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
            except OSError:
                return  # the queue is empty (or the socket closed)
            if _from_the_network(ancillary) and isinstance(addr, tuple) and len(addr) >= 2:
                self._on_failure(_peer("UDP", addr), f"{REFUSED} (ICMP unreachable)")

    def send(self, data: bytes, peer: Peer) -> None:
        if self._sock.fileno() < 0:
            self._on_failure(peer, "UDP socket closed")
            return
        for again in (False, True):
            try:
                self._sock.sendto(data, (peer.host, peer.port))
            except (BlockingIOError, InterruptedError):
                self.send_drops += 1
            except OSError as exc:
                # Most likely an ICMP error for an earlier datagram, to any peer, that failed
                # this send (taking ``sk_err`` with it): the queue tells whom it concerns, and
                # the datagram is sent once more - a second failure is this peer's own.
                self._read_errors()
                if not again:
                    continue
                self._on_failure(peer, f"send failed: {exc}")
            return

    def close(self) -> None:
        if self._sock.fileno() < 0:
            return
        if self._datagrams is not None:
            self._datagrams.close()
        else:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


def _from_the_network(ancillary: list[tuple[int, int, bytes]]) -> bool:
    """Does the error-queue entry whose control messages are ``ancillary`` carry an ICMP error
    (ip(7) ``IP_RECVERR``: a ``sock_extended_err`` with its origin)?"""
    for _, _, data in ancillary:
        if len(data) >= _EXTENDED_ERROR.size:
            return _EXTENDED_ERROR.unpack_from(data)[1] in _ICMP_ORIGINS
    return False


def _receive_errors(sock: socket.socket, family: int) -> None:
    """Queue ICMP errors with the address they concern (Linux only; elsewhere a refused peer
    surfaces as a timeout, as before)."""
    level, option = (
        (socket.IPPROTO_IPV6, IPV6_RECVERR)
        if family == socket.AF_INET6
        else (socket.IPPROTO_IP, IP_RECVERR)
    )
    with contextlib.suppress(OSError):
        sock.setsockopt(level, option, 1)


def _grow_buffers(sock: socket.socket) -> None:
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: framing, keep-alive, caps (RFC 3261 §18.3, RFC 5626 §4.4.1)."""

    def __init__(self, owner: StreamTransport, *, outbound: bool):
        self._owner = owner
        self._outbound = outbound
        self._framer = StreamFramer(outbound=outbound, max_body=owner.max_message)
        self._transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self._awaiting_pong = False
        self._keepalive: asyncio.TimerHandle | None = None
        self._progress: ProgressClock | None = None
        """For a connection we accepted: when it must next show progress (limits.py)."""
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.peer = _peer(self._owner.kind, transport.get_extra_info("peername"))
        if not self._outbound:
            now = self._owner.loop.time()
            if not self._owner.gate.accept(self.peer.host, now):
                self._transport.abort()  # refused at accept: nothing it sends is read
                return
            self._progress = ProgressClock(self._owner.gate.limits, now)
            self._arm_deadline()
        self._owner._register(self)
        if self._outbound and self._owner.keepalive_interval:
            self._schedule_keepalive()

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self._transport is not None
        if self._transport.is_closing():
            return
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            self._refuse(exc)
            return
        if self._progress is not None:
            self._progress.received(data, items, self._owner.loop.time())
            self._arm_deadline()
        for item in items:
            if item is KeepAlive.PING:
                self._transport.write(KeepAlive.PONG.value)  # RFC 5626 §3.5.1
            elif item is KeepAlive.PONG:
                self._awaiting_pong = False
            elif isinstance(item, bytes):
                self._owner.on_message(item, self.peer)

    def _arm_deadline(self) -> None:
        """One timer per accepted connection, only ever moved earlier: when it fires it reads
        the deadline again, so traffic costs no timer operations."""
        assert self._progress is not None
        deadline, _ = self._progress.deadline()
        if self._deadline is not None:
            if self._deadline_at <= deadline:
                return
            self._deadline.cancel()
        self._deadline_at = deadline
        self._deadline = self._owner.loop.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        assert self._progress is not None and self._transport is not None
        self._deadline = None
        deadline, reason = self._progress.deadline()
        if self._owner.loop.time() < deadline:
            self._arm_deadline()
            return
        log.info("sip.stream.timed_out peer=%s reason=%s", self.peer, reason)
        if self._progress.owed:
            self._transport.abort()  # a slow sender gets no graceful close to wait on
        else:
            self._transport.close()

    def _refuse(self, exc: SipParseError) -> None:
        """The stream's framing is broken: answer if we can, then close (RFC 3261 §18.3)."""
        assert self._transport is not None
        log.warning("sip.stream.framing_failed peer=%s reason=%s", self.peer, exc.reason)
        if isinstance(exc.partial, Request) and exc.status is not None:
            response = make_response(exc.partial, exc.status, exc.response_reason())
            self._transport.write(response.serialize())
        self._transport.close()

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._keepalive, self._deadline):
            if timer is not None:
                timer.cancel()
        if self._progress is not None and self.peer is not None:
            self._progress = None
            self._owner.gate.release(self.peer.host)
        self._owner._unregister(self, f"connection lost: {exc}" if exc else "connection closed")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _schedule_keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        self._keepalive = loop.call_later(self._owner.keepalive_interval, self._send_ping)

    def _send_ping(self) -> None:
        if self._awaiting_pong:
            # RFC 5626 §4.4.1: no pong since the last ping: the flow is dead
            log.warning("sip.stream.keepalive_failed peer=%s", self.peer)
            self.close()
            return
        self._awaiting_pong = True
        self.write(KeepAlive.PING.value)
        self._schedule_keepalive()


class StreamTransport:
    """A TCP or TLS listener and the outgoing connections, reused per peer (RFC 3261 §18.1.1,
    §18.2.2: responses go back over the connection the request arrived on)."""

    def __init__(
        self,
        kind: str,
        on_message: OnMessage,
        on_failure: OnFailure,
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        keepalive_interval: float = 0.0,
        connect_timeout: float = 5.0,
        limits: StreamLimits | None = None,
        max_message: int = MAX_MESSAGE_SIZE,
        admit: Admit | None = None,
    ):
        self.kind = kind
        self.loop = asyncio.get_running_loop()
        self.on_message = on_message
        self._on_failure = on_failure
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self.keepalive_interval = keepalive_interval
        """Seconds between CRLF pings on connections we open; 0 turns them off."""
        self._connect_timeout = connect_timeout
        self.gate = ConnectionGate(kind, limits or StreamLimits(), admit)
        self.max_message = max_message
        """Largest message the layer accepts, in octets: the framer refuses a longer body at
        once (413) instead of buffering it."""
        self._connections: dict[Peer, StreamConnection] = {}
        self._pending: dict[Peer, asyncio.Task[StreamConnection | None]] = {}
        self._server: asyncio.Server | None = None

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: StreamConnection(self, outbound=False),
            host,
            port,
            ssl=self._server_ssl,
            # a TLS handshake is held no longer than an incomplete message (slow-loris)
            ssl_handshake_timeout=self.gate.limits.header_timeout if self._server_ssl else None,
        )
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def is_serving(self) -> bool:
        """The listener accepts connections."""
        return self._server is not None and self._server.is_serving()

    def send(self, data: bytes, peer: Peer, server_name: str | None = None) -> None:
        connection = self._connections.get(peer)
        if connection is not None:
            connection.write(data)
            return
        task = self._pending.get(peer)
        if task is None:
            task = asyncio.ensure_future(self._connect(peer, server_name))
            self._pending[peer] = task
        task.add_done_callback(lambda t: self._after_connect(t, data))

    def _after_connect(self, task: asyncio.Task[StreamConnection | None], data: bytes) -> None:
        if not task.cancelled() and task.result() is not None:
            connection = task.result()
            assert connection is not None
            connection.write(data)

    async def _connect(self, peer: Peer, server_name: str | None) -> StreamConnection | None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: StreamConnection(self, outbound=True),
                    peer.host,
                    peer.port,
                    ssl=self._client_ssl if self.kind == "TLS" else None,
                    server_hostname=(server_name or peer.host) if self.kind == "TLS" else None,
                ),
                self._connect_timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.warning("sip.stream.connect_failed peer=%s reason=%s", peer, exc)
            cause = REFUSED if exc.errno in _REFUSALS else "cannot connect"
            self._on_failure(peer, f"{cause}: {exc}")
            return None
        finally:
            self._pending.pop(peer, None)
        return connection

    def _register(self, connection: StreamConnection) -> None:
        assert connection.peer is not None
        self._connections[connection.peer] = connection

    def _unregister(self, connection: StreamConnection, reason: str) -> None:
        peer = connection.peer
        if peer is not None and self._connections.get(peer) is connection:
            del self._connections[peer]
            self._on_failure(peer, reason)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pending.values()):
            task.cancel()
        for connection in list(self._connections.values()):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
