"""The bot side of the join tests, built as bot.runtime builds it: a SipEndpoint of
``endpoint_config`` (external mode: everything goes to ``registrar.server``, the double, as
a trusted application sends everything to its pool), a DialogRouter behind the identity
gate, and Calls with bot.media's AudioStream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.calls.calls import Calls
from bot.calls.router import DialogRouter, NotMine
from bot.config import Config
from bot.runtime import endpoint_config
from bot.services.identity import IdentityGate
from bot.sip.message import Response, make_response
from bot.sip.transaction import Peer
from bot.sounds.sound import Sound
from bot.transport.endpoint import ServerRequest, SipEndpoint

BOT = "sip:bot@contoso.com"
SCENARIOS = Path(__file__).parent / "sipp"
WAIT = 5.0
"""Seconds any awaited event may take in these tests."""


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most WAIT s) for ``condition``, checked every 10 ms of the loop."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def join_config(server: Peer, **sections: dict[str, Any]) -> Config:
    """The bot as bot@contoso.com in external mode with ``server`` as its next hop, fast SIP
    timers, and ``sections`` merged over that."""
    data: dict[str, Any] = {
        "sip": {
            "mode": "external",
            "user": "bot",
            "domain": "contoso.com",
            "listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}],
            "timers": {"t1": 0.05, "t2": 0.4, "t4": 0.5},
        },
        "registrar": {"server": f"sip:{server.host}:{server.port}"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Config.model_validate(data)


@dataclass
class JoinBot:
    config: Config
    endpoint: SipEndpoint
    router: DialogRouter
    calls: Calls


@asynccontextmanager
async def join_bot(config: Config) -> AsyncIterator[JoinBot]:
    """The endpoint, router and calls of the running bot (bot.runtime.Runtime.__init__)."""
    router = DialogRouter(IdentityGate(config))

    def route(incoming: ServerRequest) -> Response | None:
        routed = router.route(incoming)
        return make_response(incoming.request, 481) if isinstance(routed, NotMine) else routed

    endpoint = SipEndpoint(endpoint_config(config), handler=route)
    await endpoint.start()
    calls = Calls(endpoint, config, router)
    try:
        yield JoinBot(config, endpoint, router, calls)
    finally:
        await calls.close()
        await endpoint.close()


def tone(seconds: float, rate: int = 16000, hz: float = 440.0) -> Sound:
    t = np.arange(int(seconds * rate)) / rate
    return Sound((8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16), rate)
