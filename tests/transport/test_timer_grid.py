"""Issue 19 item 1: the endpoint's one timer wakes up on a coarse grid and expires every
transaction timer due by then in one pass, instead of one wake-up per Timer J or K."""

from __future__ import annotations

import asyncio

import pytest

from bot.sip import Request
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.transport.test_loopback import Recorder, options

QUICK = TimerConfig(t1=0.01, t2=0.04, t4=0.05)
"""Timer J = 64*T1 = 0.64 s, Timer K = T4 = 0.05 s (RFC 3261 §17.1.2.2, §17.2.2)."""
REQUESTS = 40


def message(host: str, port: int, call_id: str) -> Request:
    """A MESSAGE: its 200 keeps a server transaction for Timer J (an OPTIONS one does not)."""
    request = options(host, port, call_id)
    request = Request("MESSAGE", request.uri, request.headers, b"hello")
    request.headers.set("CSeq", "1 MESSAGE")
    request.headers.set("Content-Type", "text/plain")
    return request


class Wakeups:
    """Counts ``endpoint``'s timer wake-ups from now on; ``idle`` is set after the first one
    that leaves the endpoint holding no transaction (its last timers fired)."""

    def __init__(self, endpoint: SipEndpoint, monkeypatch: pytest.MonkeyPatch):
        self.count = 0
        self.idle = asyncio.Event()
        real = endpoint._on_timer

        def on_timer() -> None:
            self.count += 1
            real()
            if not endpoint.layer.transaction_count:
                self.idle.set()

        monkeypatch.setattr(endpoint, "_on_timer", on_timer)


async def test_many_transactions_end_in_few_wakeups(monkeypatch: pytest.MonkeyPatch) -> None:
    config = EndpointConfig(listen=(Listen(port=0),), timers=QUICK)
    server = SipEndpoint(config, handler=Recorder())
    client = SipEndpoint(config)
    async with server, client:
        host, port = server.address()
        server_wakeups = Wakeups(server, monkeypatch)
        client_wakeups = Wakeups(client, monkeypatch)
        destination = Peer("UDP", host, port)
        responses = [  # one after the other: the deadlines are spread over many milliseconds
            await asyncio.wait_for(
                client.request(message(host, port, f"grid-{n}"), destination=destination), 5
            )
            for n in range(REQUESTS)
        ]
        assert [r.status for r in responses] == [200] * REQUESTS
        # every Timer K (client) and J (server) fires: no transaction is left...
        await asyncio.wait_for(server_wakeups.idle.wait(), 5)
        await asyncio.wait_for(client_wakeups.idle.wait(), 5)
    # ...in a handful of wake-ups, where each expiry was one before
    assert server_wakeups.count < REQUESTS / 4 and client_wakeups.count < REQUESTS / 4
