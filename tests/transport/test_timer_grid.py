"""Issue 19 item 1: the endpoint's one timer wakes up on a coarse grid and expires every
transaction timer due by then in one pass, instead of one wake-up per Timer J or K."""

from __future__ import annotations

import asyncio

import pytest

from bot.sip import Request
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import TIMER_GRID, EndpointConfig, Listen, SipEndpoint
from tests.transport.test_loopback import Recorder, options

QUICK = TimerConfig(t1=0.01, t2=0.04, t4=0.05)
"""Timer J = 64*T1 = 0.64 s, Timer K = T4 = 0.05 s (RFC 3261 §17.1.2.2, §17.2.2)."""
REQUESTS = 40
PACE = TIMER_GRID / 4
"""Between two requests: four transactions' deadlines to a grid step, so one wake-up per
expiry would be about twice the bound below."""


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
        started = asyncio.get_running_loop().time()
        responses = []
        for n in range(REQUESTS):  # paced: the deadlines are spread over many grid steps
            request = client.request(message(host, port, f"grid-{n}"), destination=destination)
            responses.append(await asyncio.wait_for(request, 5))
            await asyncio.sleep(PACE)  # pacing the load, not waiting for anything
        assert [r.status for r in responses] == [200] * REQUESTS
        spread = asyncio.get_running_loop().time() - started
        # every Timer K (client) and J (server) fires: no transaction is left...
        await asyncio.wait_for(server_wakeups.idle.wait(), 5)
        await asyncio.wait_for(client_wakeups.idle.wait(), 5)
    # ...in no more wake-ups than grid steps the deadlines spread over, where each expiry was
    # one wake-up before. Two timers a transaction (client: E, then K; server: J and the
    # 100's), each set on the grid, + the partial steps at either end. The bound follows the
    # spread measured: a loaded machine spreads the requests, and so the steps, further.
    steps = 2 * spread / TIMER_GRID + 4
    assert server_wakeups.count <= steps and client_wakeups.count <= steps, (
        server_wakeups.count,
        client_wakeups.count,
        spread,
    )
