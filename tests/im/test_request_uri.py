"""RFC 3261 §8.2.2.1: a request outside a dialog is the bot's when its Request-URI names the
bot (any host) or, user-less, one of the bot's own hosts - its domain, advertised address or a
listening address; anything else gets 404 (the bot is no proxy)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import ConferencesConfig, Config, ListenConfig, SipConfig
from bot.runtime import Runtime
from bot.sip.message import new_request
from bot.sip.transaction import Peer
from bot.sip.uri import parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint

from .test_sessions import FAST


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = Config(
        sip=SipConfig(
            listen=(ListenConfig(transport="udp", host="127.0.0.1", port=0),),
            advertise="192.0.2.7",
        ),
        conferences=ConferencesConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}"),
    )
    bot = Runtime(config)
    await bot.start()
    yield bot
    await bot.stop()


async def test_a_message_for_someone_else_gets_404_one_for_the_bot_is_challenged(
    runtime: Runtime,
) -> None:
    bot = Peer("UDP", "127.0.0.1", runtime.endpoint.address()[1])  # address(): the advertised
    domain = runtime.config.sip.domain
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as alice:
        for _ in range(2):  # the bot's hosts are worked out once: the same answers again
            for uri, status in [
                (f"sip:127.0.0.1:{bot.port}", 401),
                (f"sip:{domain}", 401),
                ("sip:192.0.2.7", 401),  # the advertised address
                ("sip:bot@elsewhere.test", 401),  # the bot's user, any host
                ("sip:elsewhere.test", 404),
                ("sip:alice@127.0.0.1", 404),
            ]:
                message = new_request(
                    "MESSAGE",
                    parse_uri(uri),
                    from_=f"<sip:alice@{domain}>;tag=a1",
                    to=f"<sip:bot@{domain}>",
                    content_type="text/plain",
                    body=b"help",
                )
                response = await alice.request(message, destination=bot)
                assert response.status == status, uri
