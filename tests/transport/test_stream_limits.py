"""Issue 15 item 8: TCP/TLS connections others open are capped per source and in total, timed
out when idle or slow, refused at accept when banned, and never buffer past the message limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from bot.sip.framing import StreamFramer
from bot.sip.layer import MAX_MESSAGE_SIZE
from bot.sip.transaction import Peer
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from bot.transport.limits import ProgressClock, StreamLimits, source_of
from bot.transport.tls import TlsConfig
from tests.transport.test_loopback import FAST, Recorder, options, write_pair


@dataclass
class Server:
    endpoint: SipEndpoint
    recorder: Recorder
    host: str
    port: int


@contextlib.asynccontextmanager
async def tcp_server(limits: StreamLimits) -> AsyncIterator[Server]:
    recorder = Recorder()
    config = EndpointConfig(listen=(Listen(transport="TCP", port=0),), timers=FAST, limits=limits)
    async with SipEndpoint(config, handler=recorder) as endpoint:
        host, port = endpoint.address("TCP")
        yield Server(endpoint, recorder, host, port)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with tcp_server(StreamLimits()) as running:
        yield running


def wire(server: Server, call_id: str) -> bytes:
    request = options(server.host, server.port, call_id)
    request.headers.add("Via", f"SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK{call_id}")
    return request.serialize()


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(server: Server, source: str = "127.0.0.1") -> Connection:
    return await asyncio.open_connection(server.host, server.port, local_addr=(source, 0))


async def answer_or_close(connection: Connection, data: bytes) -> bytes:
    """Send ``data``; what comes back before the server closes or answers (b"" when it closed
    without a word)."""
    reader, writer = connection
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
        return b""


async def closed(connection: Connection, timeout: float = 5) -> bool:
    """Wait until the server closes the connection (EOF or reset)."""
    reader, _ = connection
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
    except ConnectionResetError:
        pass
    return True


async def test_connections_beyond_the_per_source_cap_are_refused(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    connections = [await connect(server) for _ in range(40)]
    try:
        replies = [
            await answer_or_close(c, wire(server, f"cap-{i}")) for i, c in enumerate(connections)
        ]
        answered = [r for r in replies if r.startswith(b"SIP/2.0 200")]
        assert len(answered) == 32 and replies.count(b"") == 8
        assert server.endpoint.connection_count == 32
        # one log line for the source, not one per refused connection
        assert caplog.text.count("sip.stream.refused") == 1
    finally:
        for _, writer in connections:
            writer.close()


async def test_connections_beyond_the_total_cap_are_refused() -> None:
    limits = StreamLimits(max_connections=4, max_connections_per_source=3)
    async with tcp_server(limits) as server:
        connections = [await connect(server, f"127.0.0.{1 + i % 2}") for i in range(6)]
        try:
            replies = [
                await answer_or_close(c, wire(server, f"total-{i}"))
                for i, c in enumerate(connections)
            ]
            assert sum(r.startswith(b"SIP/2.0 200") for r in replies) == 4
            assert replies.count(b"") == 2
            # a closed connection frees its place
            gone = asyncio.Event()
            layer = server.endpoint.layer
            heard = layer.transport_failed

            def noted(peer: Peer, reason: str) -> None:
                heard(peer, reason)
                gone.set()

            layer.transport_failed = noted  # type: ignore[method-assign]
            connections[replies.index(replies[0])][1].close()
            await asyncio.wait_for(gone.wait(), 5)
            later = await connect(server, "127.0.0.3")
            assert (await answer_or_close(later, wire(server, "later"))).startswith(b"SIP/2.0 200")
            later[1].close()
        finally:
            for _, writer in connections:
                writer.close()


async def test_slow_loris_is_closed_after_header_timeout() -> None:
    limits = StreamLimits(header_timeout=0.5, idle_timeout=60)
    async with tcp_server(limits) as server:
        loop = asyncio.get_running_loop()
        connection = await connect(server)
        data = wire(server, "loris")
        sent = 0

        async def drip() -> None:
            nonlocal sent
            for byte in data:  # one header byte every 0.1 s: the header block never ends in time
                connection[1].write(bytes([byte]))
                sent += 1
                await asyncio.sleep(0.1)

        started = loop.time()
        sender = asyncio.create_task(drip())
        try:
            assert await closed(connection)
        finally:
            sender.cancel()
        elapsed = loop.time() - started
        assert 0.5 <= elapsed < 2.5 and 3 <= sent < len(data)
        assert server.recorder.seen == []
        assert server.endpoint.connection_count == 0


async def test_a_connection_that_sends_nothing_is_closed_after_header_timeout() -> None:
    async with tcp_server(StreamLimits(header_timeout=0.3, idle_timeout=60)) as server:
        assert await closed(await connect(server))


async def test_a_connection_that_completes_its_messages_is_kept_until_idle() -> None:
    """Complete messages and keep-alives leave nothing pending: only idle_timeout applies."""
    limits = StreamLimits(header_timeout=0.3, idle_timeout=1.5)
    async with tcp_server(limits) as server:
        loop = asyncio.get_running_loop()
        connection = await connect(server)
        reader, writer = connection
        reply = await answer_or_close(connection, wire(server, "good-1"))
        assert reply.startswith(b"SIP/2.0 200")
        await reader.readexactly(int(reply.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
        writer.write(b"\r\n\r\n")  # RFC 5626 §3.5.1 ping
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
        quiet_since = loop.time()
        assert await closed(connection)
        assert loop.time() - quiet_since >= 1.2  # idle_timeout, not header_timeout
        writer.close()


async def test_banned_address_is_refused_at_accept(server: Server) -> None:
    asked: list[str] = []

    def admit(host: str, now: float) -> bool:
        asked.append(host)
        return host != "127.0.0.2"

    server.endpoint.admit = admit
    banned = await connect(server, "127.0.0.2")
    assert await answer_or_close(banned, wire(server, "banned")) == b""
    assert server.endpoint.layer.stats.received == 0 and server.recorder.seen == []
    allowed = await connect(server, "127.0.0.1")
    assert (await answer_or_close(allowed, wire(server, "allowed"))).startswith(b"SIP/2.0 200")
    assert asked[:2] == ["127.0.0.2", "127.0.0.1"]
    for _, writer in (banned, allowed):
        writer.close()


async def test_body_over_the_message_limit_is_refused_at_once(server: Server) -> None:
    """The framer stops at the layer's message limit (64 KiB), not at 1 MiB: a larger body is
    answered 413 from its header block, then the connection is closed (RFC 3261 §18.3)."""
    head = wire(server, "big").replace(
        b"Content-Length: 0", f"Content-Length: {MAX_MESSAGE_SIZE + 1}".encode()
    )
    connection = await connect(server)
    reply = await answer_or_close(connection, head)  # no body sent: it must not be waited for
    assert reply.startswith(b"SIP/2.0 413")
    assert await closed(connection)
    assert server.recorder.seen == []
    connection[1].close()


async def test_refused_connections_log_at_warning(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    server.endpoint.admit = lambda host, now: False
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert await answer_or_close(await connect(server), wire(server, "x")) == b""
    lines = [r.getMessage() for r in caplog.records if "sip.stream.refused" in r.getMessage()]
    assert len(lines) == 1 and "source=127.0.0.1 reason=banned" in lines[0]


def test_limits_come_from_the_config() -> None:
    from bot.config import Config, LimitsConfig, SipConfig
    from bot.runtime import endpoint_config

    limits = LimitsConfig(max_connections_per_source=2, header_timeout=3.5)
    config = endpoint_config(Config(sip=SipConfig(limits=limits)))
    assert config.limits.max_connections_per_source == 2 and config.limits.header_timeout == 3.5
    assert StreamLimits(**LimitsConfig().model_dump()) == StreamLimits()  # one set of defaults


@pytest.mark.parametrize(
    ("host", "source"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # same /64: one party, as the guard bans
        ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client of a dual-stack listener
    ],
)
def test_connections_are_counted_per_ipv4_address_and_ipv6_64(host: str, source: str) -> None:
    assert source_of(host) == source


async def test_tls_handshake_that_never_comes_is_closed_after_header_timeout(
    tmp_path: Path,
) -> None:
    certfile, keyfile = write_pair(trustme.CA(), tmp_path, "server", "127.0.0.1")
    config = EndpointConfig(
        listen=(Listen(transport="TLS", port=0),),
        tls=TlsConfig(certfile=certfile, keyfile=keyfile),
        limits=StreamLimits(header_timeout=0.3),
    )
    async with SipEndpoint(config) as endpoint:
        host, port = endpoint.address("TLS")
        connection = await asyncio.open_connection(host, port)  # plain TCP: no ClientHello
        assert await closed(connection)
        connection[1].close()


def test_progress_clock_owes_a_message_only_while_part_of_one_is_held() -> None:
    limits = StreamLimits(header_timeout=10, idle_timeout=100)
    framer = StreamFramer()
    clock = ProgressClock(limits, now=0.0)
    assert clock.deadline() == (10.0, "no complete message")  # from accept

    def feed(data: bytes, now: float) -> None:
        clock.received(data, framer.feed(data), now)

    message = b"OPTIONS sip:bot@x SIP/2.0\r\nContent-Length: 2\r\n\r\nhi"
    feed(message[:20], 1.0)
    assert clock.deadline() == (10.0, "no complete message")  # still owed since accept
    feed(message[20:] + message[:5], 5.0)  # one message ends, the next begins: clock restarts
    assert clock.deadline() == (15.0, "no complete message")
    feed(message[5:], 6.0)
    assert clock.deadline() == (106.0, "idle") and not clock.owed
    feed(b"\r", 7.0)  # a lone CRLF, octet by octet: a keep-alive in progress, not a message
    feed(b"\n", 8.0)
    assert clock.deadline() == (108.0, "idle")
    feed(b"\r\n", 9.0)  # ... that turned out to be a ping
    assert clock.deadline() == (109.0, "idle")
