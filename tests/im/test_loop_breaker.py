"""Two sipbots messaging each other. Their replies carry Auto-Submitted, so neither answers the
other; and when something on the path strips that marker (many gateways drop headers they do
not know), each bot's circuit breaker ends the loop within its limit."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Config
from bot.runtime import Runtime
from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
LIMIT = 5


class Relay:
    """The outbound proxy of both bots: answers 200 and forwards each MESSAGE to the bot of
    its To domain, dropping Auto-Submitted when ``strip`` (as a careless gateway would)."""

    def __init__(self, strip: bool):
        self.strip = strip
        self.bots: dict[str, Peer] = {}
        self.forwarded: Counter[str] = Counter()
        self.progress = asyncio.Event()
        self.endpoint = SipEndpoint(
            EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=self.handle
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, incoming: ServerRequest) -> Response:
        request = incoming.request
        if request.method == "MESSAGE":
            task = asyncio.ensure_future(self.forward(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return make_response(request, 200)  # REGISTERs of the bots included

    async def forward(self, request: Request) -> None:
        domain = request.to.sip_uri.host
        copy = Request("MESSAGE", parse_uri(f"sip:bot@{domain}"), Headers.of(
            ("From", f"<{request.from_.uri}>;tag={new_tag()}"), ("To", f"<sip:bot@{domain}>"),
            ("Call-ID", new_tag()), ("CSeq", "1 MESSAGE"),
            ("Content-Type", request.headers.get("content-type") or "text/plain")))  # fmt: skip
        marker = request.headers.get("auto-submitted")
        if marker and not self.strip:
            copy.headers.add("Auto-Submitted", marker)
        copy.body = request.body
        self.forwarded[domain] += 1
        self.progress.set()
        await self.endpoint.request(copy, destination=self.bots[domain])

    async def quiet(self, seconds: float = 1.0, limit: float = 20.0) -> None:
        """Until nothing has been forwarded for ``seconds``: the conversation is over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            self.progress.clear()
            try:
                await asyncio.wait_for(self.progress.wait(), seconds)
            except TimeoutError:
                return
        raise AssertionError(f"still looping after {limit} s: {self.forwarded}")


def bot_config(domain: str, relay: tuple[str, int], tmp_path: Path) -> Config:
    return Config.model_validate(
        {
            "sip": {
                "mode": "external",
                "domain": domain,
                "listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}],
            },
            "registrar": {"server": f"sip:{relay[0]}:{relay[1]}", "username": "bot"},
            "acl": {"allowed_domains": ["a.test", "b.test"]},
            "im": {"loop_breaker": {"max_replies": LIMIT, "window": 60}},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / domain}.db"},
        }
    )


@pytest.fixture
async def two_bots(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Relay, Runtime, Runtime]]:
    relay = Relay(strip=request.param)
    await relay.endpoint.start()
    a = Runtime(bot_config("a.test", relay.endpoint.address(), tmp_path))
    b = Runtime(bot_config("b.test", relay.endpoint.address(), tmp_path))
    await a.start()
    await b.start()
    relay.bots = {
        "a.test": Peer("UDP", *a.endpoint.address()),
        "b.test": Peer("UDP", *b.endpoint.address()),
    }
    yield relay, a, b
    for bot in (a, b):
        await bot.stop()
    for task in list(relay._tasks):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await relay.endpoint.close()


async def kick_off(relay: Relay) -> None:
    """Someone makes bot A talk to bot B: a MESSAGE to A that says it is from B."""
    first = Request("MESSAGE", parse_uri("sip:bot@a.test"), Headers.of(
        ("From", f"<sip:bot@b.test>;tag={new_tag()}"), ("To", "<sip:bot@a.test>"),
        ("Call-ID", new_tag()), ("CSeq", "1 MESSAGE"), ("Content-Type", "text/plain")))  # fmt: skip
    first.body = b"hello"
    response = await relay.endpoint.request(first, destination=relay.bots["a.test"])
    assert response.status == 200


@pytest.mark.parametrize("two_bots", [False], indirect=True)
async def test_two_sipbots_never_answer_each_other(
    two_bots: tuple[Relay, Runtime, Runtime],
) -> None:
    relay, a, b = two_bots
    await kick_off(relay)
    await relay.quiet()
    assert relay.forwarded == {"b.test": 1}  # A answered once; B did not answer A
    assert b.im is not None and b.im.loops.suppressed == 0


@pytest.mark.parametrize("two_bots", [True], indirect=True)
async def test_the_circuit_breaker_ends_a_loop_when_the_marker_is_lost(
    two_bots: tuple[Relay, Runtime, Runtime],
) -> None:
    relay, a, b = two_bots
    await kick_off(relay)
    await relay.quiet()
    assert a.im is not None and b.im is not None
    assert relay.forwarded["b.test"] <= LIMIT and relay.forwarded["a.test"] <= LIMIT
    assert a.im.loops.suppressed + b.im.loops.suppressed >= 1
