"""IM sessions against the bot in this process: a user's session, the bot closing it when
idle, and requests for a dialog it does not know."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import ConferencesConfig, Config, ImConfig, ListenConfig, SipConfig
from bot.runtime import Runtime
from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.dialog import Dialog
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.sdp import message_offer
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = Config(
        sip=SipConfig(listen=(ListenConfig(transport="udp", port=0),)),
        im=ImConfig(session_idle_timeout=0.5),
        conferences=ConferencesConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}"),
    )
    bot = Runtime(config)
    await bot.start()
    yield bot
    await bot.stop()


class Alice:
    """A user agent that answers 200 to whatever the bot sends and remembers it."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[Request] = asyncio.Queue()

    def __call__(self, incoming: ServerRequest) -> Response:
        self.received.put_nowait(incoming.request)
        return make_response(incoming.request, 200)


async def open_session(alice: SipEndpoint, bot: Peer) -> tuple[Request, Response]:
    host, port = alice.address()
    invite = Request(
        "INVITE",
        parse_uri(f"sip:bot@{bot.host}:{bot.port}"),
        Headers.of(
            ("From", f"<sip:alice@example.test>;tag={new_tag()}"),
            ("To", "<sip:bot@example.test>"),
            ("Call-ID", new_tag()),
            ("CSeq", "1 INVITE"),
            ("Contact", str(alice.contact("alice"))),
            ("Content-Type", "application/sdp"),
        ),
    )
    invite.body = message_offer(host, port, "null").serialize()
    ok = await alice.request(
        invite, destination=bot, credentials=DigestClient("alice", "alice-demo")
    )
    return invite, ok


async def test_session_commands_and_idle_close(runtime: Runtime) -> None:
    user = Alice()
    bot = Peer("UDP", *runtime.endpoint.address())
    async with SipEndpoint(
        EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=user
    ) as alice:
        invite, ok = await open_session(alice, bot)
        assert ok.status == 200 and b"m=message" in ok.body
        dialog = Dialog.as_uac(invite, ok)
        alice.send_ack(dialog.create_ack(invite.cseq.seq, via=alice.via()), bot)
        message = dialog.create_request(
            "MESSAGE", via=alice.via(), body=b"help", content_type="text/plain"
        )
        assert (await alice.request(message, destination=bot)).status == 200
        reply = await asyncio.wait_for(user.received.get(), 5)
        assert reply.method == "MESSAGE" and reply.body.startswith(b"Commands:")
        assert reply.call_id == invite.call_id  # answered inside the session
        bye = await asyncio.wait_for(user.received.get(), 5)  # idle for 0.5 s: closed
        assert bye.method == "BYE" and bye.call_id == invite.call_id
        assert runtime.im is not None and runtime.im.session_count == 0
        late = dialog.create_request(
            "MESSAGE", via=alice.via(), body=b"help", content_type="text/plain"
        )
        assert (await alice.request(late, destination=bot)).status == 481


async def test_audio_calls_are_refused_with_488(runtime: Runtime) -> None:
    bot = Peer("UDP", *runtime.endpoint.address())
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as alice:
        invite = Request(
            "INVITE",
            parse_uri(f"sip:bot@{bot.host}:{bot.port}"),
            Headers.of(
                ("From", f"<sip:alice@example.test>;tag={new_tag()}"),
                ("To", "<sip:bot@example.test>"),
                ("Call-ID", new_tag()),
                ("CSeq", "1 INVITE"),
                ("Contact", str(alice.contact("alice"))),
                ("Content-Type", "application/sdp"),
            ),
        )
        invite.body = (
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 4000 RTP/AVP 0\r\n"
        )
        response = await alice.request(
            invite, destination=bot, credentials=DigestClient("alice", "alice-demo")
        )
        assert response.status == 488
