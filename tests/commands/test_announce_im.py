"""announce/play over real SIP on loopback: the user's MESSAGE gets its 200 at once, the reply
comes when the announcement is over, and other users are answered meanwhile (each message is
answered in a task of its own, bot.im.service)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bot.announcements.service import Announcer
from bot.config import Config
from bot.runtime import Runtime
from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.announcements.doubles import FakeCalls, FakeJoiner, FakeSounds

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def message(user: str, contact: str, text: str) -> Request:
    headers = Headers.of(
        ("From", f"<sip:{user}@example.test>;tag={new_tag()}"),
        ("To", "<sip:bot@example.test>"),
        ("Call-ID", new_tag()),
        ("CSeq", "1 MESSAGE"),
        ("Contact", contact),
        ("Content-Type", "text/plain"),
    )
    return Request("MESSAGE", parse_uri("sip:bot@example.test"), headers, text.encode())


def inbox_handler(inbox: asyncio.Queue[str]) -> Callable[[ServerRequest], Response]:
    def handler(incoming: ServerRequest) -> Response:
        inbox.put_nowait(incoming.request.body.decode())
        return make_response(incoming.request, 200)

    return handler


async def test_the_reply_comes_when_done_and_others_are_answered_meanwhile(
    tmp_path: Path,
) -> None:
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    calls = FakeCalls()
    calls.gate = asyncio.Event()
    runtime.services.announcer = Announcer(FakeJoiner(calls), FakeSounds(), calls)
    runtime.services.sounds = runtime.services.announcer.sounds
    alice_inbox: asyncio.Queue[str] = asyncio.Queue()
    bob_inbox: asyncio.Queue[str] = asyncio.Queue()
    listen = EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST)
    try:
        bot = Peer("UDP", *runtime.endpoint.address())
        async with (
            SipEndpoint(listen, handler=inbox_handler(alice_inbox)) as alice,
            SipEndpoint(listen, handler=inbox_handler(bob_inbox)) as bob,
        ):
            sent = await alice.request(
                message("alice", str(alice.contact("alice")), "play sip:bob@example.test chime"),
                destination=bot, credentials=DigestClient("alice", "alice-demo"),
            )  # fmt: skip
            assert sent.status == 200  # at once: the call is still ringing
            await asyncio.wait_for(calls.playing.wait(), 5)
            asked = await bob.request(
                message("bob", str(bob.contact("bob")), "my meetings"),
                destination=bot, credentials=DigestClient("bob", "bob-demo"),
            )  # fmt: skip
            assert asked.status == 200
            assert "Design review" in await asyncio.wait_for(bob_inbox.get(), 5)
            assert alice_inbox.empty()  # still playing
            calls.gate.set()
            reply = await asyncio.wait_for(alice_inbox.get(), 5)
            assert reply == "Played 'chime' to sip:bob@example.test (1.5 s)."
            assert calls.log[-1] == "hung up sip:bob@example.test"
    finally:
        await runtime.stop()
