"""A much-guessed user name is paced (bot.services.guard): the verdict on a right answer from
an address the user never authenticated from waits ``user_delay``, then the pager MESSAGE is
answered and replied to as any other (the IM service's held path)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import AuthSecurityConfig, ConferencesConfig, Config, ListenConfig, SipConfig
from bot.runtime import Runtime
from bot.sip.message import Request, Response, make_response
from bot.sip.transaction import Peer
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.im.test_pager_content import Alice, next_message
from tests.im.test_sessions import FAST

DELAY = 0.3


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = Config(
        sip=SipConfig(listen=(ListenConfig(transport="udp", port=0),)),
        security={"auth": AuthSecurityConfig(user_max_failures=3, user_delay=DELAY)},
        conferences=ConferencesConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}"),
    )
    bot = Runtime(config)
    await bot.start()
    yield bot
    await bot.stop()


async def test_a_paced_pager_message_is_answered_after_the_delay(runtime: Runtime) -> None:
    inbox: asyncio.Queue[Request] = asyncio.Queue()

    def handler(incoming: ServerRequest) -> Response:
        inbox.put_nowait(incoming.request)
        return make_response(incoming.request, 200)

    loop = asyncio.get_running_loop()
    for n in range(3):  # someone guesses alice's password from elsewhere
        runtime.guard.pace("alice", f"203.0.113.{n}", False, loop.time())
        runtime.guard.failed(f"203.0.113.{n}", "alice", "wrong credentials", loop.time())
    bot = Peer("UDP", *runtime.endpoint.address())
    config = EndpointConfig(listen=(Listen(port=0),), timers=FAST)
    async with SipEndpoint(config, handler=handler) as endpoint:
        user = Alice(endpoint, bot)
        started = loop.time()
        answered = await user.say("text/plain", b"help")
        assert answered.status == 200 and loop.time() - started >= DELAY * 0.9
        assert b"Commands:" in (await next_message(inbox)).body
