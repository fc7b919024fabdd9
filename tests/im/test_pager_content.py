"""Pager-mode messages with what real clients put in them, against the bot in this process:
CPIM asking for receipts, compressed bodies, typing notices, receipts and automata's messages
(accepted, never answered)."""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.commands import CommandContext, command
from bot.commands.registry import Registry
from bot.conferencing.services import NewConference
from bot.config import ConferencesConfig, Config, ListenConfig, SipConfig
from bot.im import cpim, imdn
from bot.runtime import Runtime
from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
ISCOMPOSING = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
    b"<state>active</state><contenttype>text/plain</contenttype></isComposing>"
)


class Alice:
    """alice's user agent: registered, answers 200 to what the bot sends and keeps it."""

    def __init__(self, endpoint: SipEndpoint, bot: Peer):
        self.endpoint = endpoint
        self.bot = bot
        self.credentials = DigestClient("alice", "alice-demo")

    async def register(self) -> None:
        request = self._request("REGISTER", "sip:example.test")
        request.headers.set("To", "<sip:alice@example.test>")
        request.headers.add("Expires", "300")
        response = await self.endpoint.request(
            request, destination=self.bot, credentials=self.credentials
        )
        assert response.status == 200

    async def say(
        self, content_type: str, body: bytes, *, extra: tuple[tuple[str, str], ...] = ()
    ) -> Response:
        message = self._request("MESSAGE", "sip:bot@example.test")
        message.headers.add("Content-Type", content_type)
        for name, value in extra:
            message.headers.add(name, value)
        message.body = body
        return await self.endpoint.request(
            message, destination=self.bot, credentials=self.credentials
        )

    def _request(self, method: str, uri: str) -> Request:
        return Request(
            method,
            parse_uri(uri),
            Headers.of(
                ("From", f"<sip:alice@example.test>;tag={new_tag()}"),
                ("To", "<sip:bot@example.test>"),
                ("Call-ID", new_tag()),
                ("CSeq", f"1 {method}"),
                ("Contact", str(self.endpoint.contact("alice"))),
            ),
        )


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = Config(
        sip=SipConfig(listen=(ListenConfig(transport="udp", port=0),)),
        conferences=ConferencesConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}"),
    )
    bot = Runtime(config)
    await bot.start()
    yield bot
    await bot.stop()


@pytest.fixture
async def alice(runtime: Runtime) -> AsyncIterator[tuple[Alice, asyncio.Queue[Request]]]:
    inbox: asyncio.Queue[Request] = asyncio.Queue()

    def handler(incoming: ServerRequest) -> Response:
        inbox.put_nowait(incoming.request)
        return make_response(incoming.request, 200)

    bot = Peer("UDP", *runtime.endpoint.address())
    config = EndpointConfig(listen=(Listen(port=0),), timers=FAST)
    async with SipEndpoint(config, handler=handler) as endpoint:
        user = Alice(endpoint, bot)
        await user.register()
        yield user, inbox


async def next_message(inbox: asyncio.Queue[Request]) -> Request:
    return await asyncio.wait_for(inbox.get(), 5)


async def test_cpim_text_gets_a_cpim_reply_and_the_receipts_it_asks_for(
    alice: tuple[Alice, asyncio.Queue[Request]],
) -> None:
    user, inbox = alice
    body = cpim.build(
        [
            ("From", "<sip:alice@example.test>"),
            ("To", "<sip:bot@example.test>"),
            ("imdn.Message-ID", "alice-1"),
            ("imdn.Disposition-Notification", "positive-delivery, display"),
        ],
        "text/plain",
        b"my meetings",
    )
    assert (await user.say("message/cpim", body)).status == 200
    got = [await next_message(inbox) for _ in range(3)]
    assert all(m.headers.get("auto-submitted") == "auto-replied" for m in got)
    wrapped = [cpim.parse(m.body) for m in got]
    replies = [w for w in wrapped if (w.content_type or "").startswith("text/plain")]
    assert len(replies) == 1 and b"Weekly sync" in replies[0].content
    receipts = sorted(
        (imdn.parse(w.content).kind, imdn.parse(w.content).status, imdn.parse(w.content).message_id)
        for w in wrapped
        if w.content_type == imdn.MEDIA_TYPE
    )
    assert receipts == [("delivery", "delivered", "alice-1"), ("display", "displayed", "alice-1")]


async def test_compressed_text_is_read_and_a_bomb_gets_413(
    alice: tuple[Alice, asyncio.Queue[Request]],
) -> None:
    user, inbox = alice
    bomb = zlib.compress(b" " * (512 * 1024), 9)  # 512 KiB in ~520 bytes: fits a datagram
    refused = await user.say("text/plain", bomb, extra=(("Content-Encoding", "deflate"),))
    assert refused.status == 413
    ok = await user.say(
        "text/plain", zlib.compress(b"help"), extra=(("Content-Encoding", "deflate"),)
    )
    assert ok.status == 200
    reply = await next_message(inbox)
    assert b"my meetings" in reply.body  # the help text: the bomb got no reply at all


async def test_typing_receipts_and_automata_are_accepted_and_never_answered(
    runtime: Runtime, alice: tuple[Alice, asyncio.Queue[Request]]
) -> None:
    user, inbox = alice
    delivered = imdn.build(
        "delivery", "delivered", "bot-1", "sip:alice@example.test", datetime.now(UTC)
    )
    for content_type, body, extra in [
        ("application/im-iscomposing+xml", ISCOMPOSING, ()),
        ("message/imdn+xml", zlib.compress(delivered), (("Content-Encoding", "deflate"),)),
        ("text/plain", b"I am an autoresponder", (("Auto-Submitted", "auto-replied"),)),
    ]:
        assert (await user.say(content_type, body, extra=extra)).status == 200
    assert (await user.say("text/plain", b"help")).status == 200
    first = await next_message(inbox)  # had any of the three been answered, that came first
    assert b"my meetings" in first.body
    assert runtime.im is not None
    assert runtime.im.receipts.received[("delivery", "delivered")] == 1


async def test_an_unknown_body_gets_415_naming_what_is_read(
    alice: tuple[Alice, asyncio.Queue[Request]],
) -> None:
    user, _ = alice
    refused = await user.say("application/octet-stream", b"\x00\x01")
    assert refused.status == 415
    assert "message/cpim" in (refused.headers.get("accept") or "")


async def test_a_slow_command_shows_the_bot_typing_until_the_answer(
    runtime: Runtime, alice: tuple[Alice, asyncio.Queue[Request]]
) -> None:
    user, inbox = alice
    release = asyncio.Event()
    registry = Registry()

    @command("report", usage="report", registry=registry)
    async def report(ctx: CommandContext) -> str:
        """A command that takes its time."""
        await release.wait()
        return "the report"

    runtime.dispatcher.registry = registry
    typing = {"typing": {"send": True, "after": 0.05}}
    runtime.reload(Config.model_validate({**runtime.config.model_dump(), "im": typing}))
    assert (await user.say("text/plain", b"report")).status == 200
    active = await next_message(inbox)
    assert active.headers.get("content-type") == "application/im-iscomposing+xml"
    assert b"<state>active</state>" in active.body
    release.set()
    answer, idle = await next_message(inbox), await next_message(inbox)
    assert answer.body == b"the report"
    assert b"<state>idle</state>" in idle.body


async def test_bodies_that_cannot_be_decoded_get_415_and_the_bot_still_answers(
    alice: tuple[Alice, asyncio.Queue[Request]],
) -> None:
    """Issue 15 item 11: each was a 500 (LookupError, UnicodeError, AssertionError)."""
    user, inbox = alice
    for content_type, body in [
        ("text/plain; charset=base64", b"aGVscA=="),
        ("text/plain; charset=idna", b"help"),
        ("text/html; charset=rot13", b"<b>uryc</b>"),
        ("message/cpim", cpim.build([], "text/plain; charset=undefined", b"help")),
    ]:
        refused = await user.say(content_type, body)
        assert refused.status == 415, content_type
        assert "text/plain" in (refused.headers.get("accept") or "")
    assert (await user.say("text/html", b"help<![<![")).status == 200
    assert b"my meetings" in (await next_message(inbox)).body  # html.parser raised on that


async def test_a_long_listing_reaches_a_udp_only_client_page_by_page(
    runtime: Runtime, alice: tuple[Alice, asyncio.Queue[Request]]
) -> None:
    """Issue 14 item 14: with 16 conferences the reply was over 1300 bytes, went to TCP
    (RFC 3261 §18.1.1), which a UDP-only softphone refuses: alice got nothing."""
    user, inbox = alice
    start = datetime.now(UTC) + timedelta(days=3)
    for n in range(14):  # and the two demo conferences
        new = NewConference(
            subject=f"Projektbesprechung Überblick {n:02d} " + "é" * 40,
            start=start + timedelta(hours=n),
            duration=timedelta(hours=1),
        )
        await runtime.store.schedule("alice@example.test", new)
    pages: list[Request] = []
    text = "my meetings"
    while True:
        assert (await user.say("text/plain", text.encode())).status == 200
        pages.append(await next_message(inbox))
        if b"send 'more'" not in pages[-1].body:
            break
        text = "more"
    sizes = [len(page.serialize()) for page in pages]
    assert len(pages) > 2 and max(sizes) <= 1300, sizes
    listed = re.findall(rb"^(\d+)\. ", b"\n".join(p.body for p in pages), re.MULTILINE)
    assert [int(n) for n in listed] == list(range(1, 17))  # every one, once, in order
    # the same page in CPIM (Linphone) carries about 200 bytes more: still under 1300
    asked = cpim.build([("imdn.Message-ID", "a-2")], "text/plain", b"my meetings")
    assert (await user.say("message/cpim", asked)).status == 200
    wrapped = await next_message(inbox)
    assert b"Your conferences (16):" in wrapped.body
    assert len(wrapped.serialize()) <= 1300, len(wrapped.serialize())
