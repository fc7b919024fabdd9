"""Issue 15 item 13: the endpoint pump survives any single event, and its timer is always
re-armed; an early wake-up of that timer does the work it was armed for."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest

from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.errors import ProtocolStateError
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.transport.test_loopback import FAST, options


@pytest.fixture
async def silent() -> AsyncIterator[socket.socket]:
    """A UDP socket that reads what it is sent and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


async def copies(sock: socket.socket, count: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    return [await asyncio.wait_for(loop.sock_recv(sock, 65535), 5) for _ in range(count)]


def invite(host: str, port: int, call_id: str) -> Request:
    headers = Headers.of(
        ("From", "<sip:alice@example.test>;tag=a1"),
        ("To", "<sip:bot@example.test>"),
        ("Call-ID", call_id),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:alice@127.0.0.1>"),
    )
    return Request("INVITE", parse_uri(f"sip:bot@{host}:{port}"), headers)


async def test_pump_survives_a_failing_timer_and_rearms_it(
    silent: socket.socket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as client:
        real = client.layer.handle_timer
        failures: list[float] = []

        def fails_once(now: float) -> None:
            if not failures:
                failures.append(now)
                raise ProtocolStateError("client non-INVITE", "Completed", "transport error")
            real(now)

        monkeypatch.setattr(client.layer, "handle_timer", fails_once)
        port = silent.getsockname()[1]
        pending = client.request(
            options("127.0.0.1", port, "timer-1"), destination=Peer("UDP", "127.0.0.1", port)
        )
        # Timers E (retransmit) and F (give up, 408) still fire after the failing wake-up
        response = await asyncio.wait_for(pending, 5)
        assert failures and response.status == 408
        assert len(await copies(silent, 3)) == 3
    assert "sip.timer.failed" in caplog.text


async def test_pump_survives_a_failing_callback_and_keeps_the_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A CANCEL whose on_cancel callback raises still gets its 200 and the INVITE its 487, on the
    same TCP connection: before, the exception escaped into asyncio, which closed it."""
    never = asyncio.Event()

    async def ringing(incoming: ServerRequest) -> Response | None:
        if incoming.request.method != "INVITE":
            return make_response(incoming.request, 200)
        await never.wait()  # rings until cancelled
        return None

    def broken(invite: Request) -> None:
        raise RuntimeError("on_cancel failed")

    listen = (Listen(transport="TCP", port=0),)
    server = SipEndpoint(EndpointConfig(listen=listen, timers=FAST), handler=ringing)
    client = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))
    server.on_cancel = broken
    async with server, client:
        host, port = server.address("TCP")
        request = invite(host, port, "cancel-1")
        trying = asyncio.Event()
        pending = asyncio.create_task(
            client.request(
                request, destination=Peer("TCP", host, port), on_provisional=lambda r: trying.set()
            )
        )
        await asyncio.wait_for(trying.wait(), 5)
        client.client.cancel(request)
        response = await asyncio.wait_for(pending, 5)
        assert response.status == 487
        assert server.connection_count == 1
        # and the next request on that connection is answered
        later = await client.request(
            options(host, port, "after-cancel"), destination=Peer("TCP", host, port)
        )
        assert later.status == 200
    failed = [r.getMessage() for r in caplog.records if "sip.event.failed" in r.getMessage()]
    assert failed and "CancelReceived" in failed[0] and "cancel-1" in failed[0]


async def test_pump_survives_a_failing_receive(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A message whose handling raises is logged with its source; the client's retransmission
    (RFC 3261 §17.1.2.2, Timer E) is then answered as usual."""
    server = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))
    client = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))
    async with server, client:
        real = server.layer.receive
        failures: list[Peer] = []

        def fails_once(data: bytes, peer: Peer, now: float) -> None:
            if not failures:
                failures.append(peer)
                raise ProtocolStateError("server non-INVITE", "Trying", "request")
            real(data, peer, now)

        monkeypatch.setattr(server.layer, "receive", fails_once)
        host, port = server.address()
        response = await asyncio.wait_for(
            client.request(options(host, port, "rx-1"), destination=Peer("UDP", host, port)), 5
        )
        assert response.status == 501 and failures
    with caplog.at_level(logging.ERROR):
        assert f"sip.message.failed peer={failures[0]}" in caplog.text


async def test_early_timer_wakeup_does_the_work(silent: socket.socket) -> None:
    """asyncio runs a ``call_at`` callback up to one clock resolution before its time; the pump
    then handles the deadline it armed for (as aioquic clamps ``now``) instead of re-arming."""
    slow = TimerConfig(t1=20.0, t2=40.0, t4=5.0)
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=slow)) as client:
        port = silent.getsockname()[1]
        pending = asyncio.create_task(
            client.request(
                options("127.0.0.1", port, "early-1"), destination=Peer("UDP", "127.0.0.1", port)
            )
        )
        await copies(silent, 1)
        armed = client._timer
        assert armed is not None and client._timer_at is not None
        armed.cancel()
        client._on_timer()  # what the loop does when it runs the handle 20 s early
        assert len(await copies(silent, 1)) == 1  # Timer E's retransmission, at once
        pending.cancel()


async def test_a_handler_answering_twice_is_logged_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An async handler that answered and then returns another final response: the first
    answer stands, the second is refused by the transaction and logged with its context."""
    done = asyncio.Event()

    async def twice(incoming: ServerRequest) -> Response:
        incoming.respond(200)
        done.set()
        return make_response(incoming.request, 486)

    server = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=twice)
    client = SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))
    async with server, client:
        host, port = server.address()
        request = options(host, port, "twice-1")  # as a MESSAGE: its 200 keeps a transaction
        request = Request("MESSAGE", request.uri, request.headers)
        request.headers.set("CSeq", "1 MESSAGE")
        response = await asyncio.wait_for(
            client.request(request, destination=Peer("UDP", host, port)), 5
        )
        assert response.status == 200
        await asyncio.wait_for(done.wait(), 5)
        while server._handlers._tasks:  # the handler task ends once its second answer was refused
            await asyncio.wait(set(server._handlers._tasks), timeout=5)
    assert "sip.handler.answer_refused method=MESSAGE call_id=twice-1 status=486" in caplog.text


class _FarClockLoop(asyncio.SelectorEventLoop):
    """A loop whose clock is not ``time.monotonic()`` (as uvloop's is its own): a day ahead."""

    def time(self) -> float:
        return super().time() + 86_400.0


def test_timers_run_on_the_loops_own_clock() -> None:
    """The endpoint reads the clock its ``call_at`` deadlines are on: on a loop with a clock of
    its own, Timer E still retransmits T1 and 2*T1 apart and Timer F still ends the request
    with 408 at 64*T1 (RFC 3261 §17.1.2.2), neither at once nor never."""

    async def scenario() -> tuple[list[float], int]:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent.setblocking(False)
            port = silent.getsockname()[1]
            config = EndpointConfig(listen=(Listen(port=0),), timers=FAST)
            async with SipEndpoint(config) as client:
                pending = client.request(
                    options("127.0.0.1", port, "clock-1"),
                    destination=Peer("UDP", "127.0.0.1", port),
                )
                task = asyncio.ensure_future(pending)
                arrivals: list[float] = []
                for _ in range(3):  # the request, then Timer E twice
                    await asyncio.wait_for(loop.sock_recv(silent, 65535), 5)
                    arrivals.append(loop.time())
                response = await asyncio.wait_for(task, 10)
        return arrivals, response.status

    loop = _FarClockLoop()
    try:
        arrivals, status = loop.run_until_complete(scenario())
    finally:
        loop.close()
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    assert gaps[0] >= FAST.t1 and gaps[1] >= 2 * FAST.t1 and gaps[1] < 4 * FAST.t1 + 0.5
    assert status == 408
