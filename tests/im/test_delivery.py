"""Pager replies to a user with several registered contacts (issue 15 item 10): every contact
is tried at once with one deadline, so a dead one does not hold the reply back for Timer F."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.config import Config
from bot.runtime import Runtime
from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.digest import DigestClient
from bot.sip.headers import Address
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.uri import SipUri
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def request(method: str, contact: str, expires: int = 0) -> Request:
    headers = Headers.of(
        ("From", f"<sip:alice@example.test>;tag={new_tag()}"),
        ("To", f"<sip:{'alice' if method == 'REGISTER' else 'bot'}@example.test>"),
        ("Call-ID", new_tag()),
        ("CSeq", f"1 {method}"),
        ("Contact", contact),
    )
    if method == "REGISTER":
        headers.add("Expires", str(expires))
        return Request("REGISTER", parse_uri("sip:example.test"), headers)
    headers.add("Content-Type", "text/plain")
    return Request(method, parse_uri("sip:bot@example.test"), headers, b"help")


async def test_replies_try_every_binding_at_once(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    loop = asyncio.get_running_loop()
    # a contact that never answers: a bound socket nobody reads
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    inbox: asyncio.Queue[Request] = asyncio.Queue()

    def handler(incoming: ServerRequest) -> Response:
        inbox.put_nowait(incoming.request)
        return make_response(incoming.request, 200)

    try:
        bot = Peer("UDP", *runtime.endpoint.address())
        async with SipEndpoint(
            EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST),
            handler=handler,
        ) as alice:
            live = str(alice.contact("alice"))
            dead = "<sip:alice@127.0.0.1:{}>".format(silent.get_extra_info("sockname")[1])
            # the dead contact expires last: it is the one a one-by-one delivery tries first
            for contact, expires in ((live, 300), (dead, 3000)):
                registered = await alice.request(
                    request("REGISTER", contact, expires),
                    destination=bot,
                    credentials=DigestClient("alice", "alice-demo"),
                )
                assert registered.status == 200
            sent = await alice.request(
                request("MESSAGE", live), destination=bot,
                credentials=DigestClient("alice", "alice-demo"),
            )  # fmt: skip
            assert sent.status == 200
            # one by one, the dead contact would hold the reply for 64*T1 = 32 s
            reply = await asyncio.wait_for(inbox.get(), 5)
            assert reply.method == "MESSAGE" and reply.body.startswith(b"Commands:")
            # From: the bot's identity with a fresh tag, written as the tagged Address renders
            tag = reply.from_.tag
            assert tag is not None and len(tag) >= 8  # RFC 3261 §19.3: 32 random bits at least
            bot_identity = Address(
                uri=SipUri(user=config.sip.user, host=config.sip.domain),
                display_name=config.sip.display_name,
                params=(("tag", tag),),
            )
            assert reply.headers.get("From") == str(bot_identity)
    finally:
        silent.close()
        await runtime.stop()
