"""Whose conferences a request gets is decided by who sent it - never by what it claims.
Embedded: the digest-authenticated user, whatever From or P-Asserted-Identity say. Behind
proxies: only requests from a trusted proxy are taken, and its P-Asserted-Identity counts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.config import Config
from bot.runtime import Runtime
from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def claim(sender: str, asserted: str, contact: str) -> Request:
    message = Request("MESSAGE", parse_uri("sip:bot@example.test"), Headers.of(
        ("From", f"<sip:{sender}@example.test>;tag={new_tag()}"),
        ("To", "<sip:bot@example.test>"), ("Call-ID", new_tag()), ("CSeq", "1 MESSAGE"),
        ("P-Asserted-Identity", f"<sip:{asserted}@example.test>"), ("Contact", contact),
        ("Content-Type", "text/plain")), b"my meetings")  # fmt: skip
    return message


async def run_bot(tmp_path: Path, **sections: object) -> Runtime:
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
            **sections,
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    return runtime


async def run_behind_proxy(tmp_path: Path, host: str, port: int) -> Runtime:
    """The bot in external mode whose registrar and only trusted proxy is ``host:port``."""
    return await run_bot(
        tmp_path,
        sip={
            "mode": "external",
            "trusted_proxies": [host],
            "listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}],
        },
        registrar={"server": f"sip:{host}:{port}"},
    )


def user_agent(host: str, inbox: asyncio.Queue[Request]) -> SipEndpoint:
    def handler(incoming: ServerRequest) -> Response:
        inbox.put_nowait(incoming.request)
        return make_response(incoming.request, 200)

    return SipEndpoint(
        EndpointConfig(listen=(Listen(host=host, port=0),), timers=FAST), handler=handler
    )


async def test_embedded_the_authenticated_user_counts_not_the_claims(tmp_path: Path) -> None:
    runtime = await run_bot(tmp_path)
    inbox: asyncio.Queue[Request] = asyncio.Queue()
    try:
        bot = Peer("UDP", *runtime.endpoint.address())
        async with user_agent("127.0.0.1", inbox) as bob:
            contact = str(bob.contact("bob"))
            sent = await bob.request(
                claim("alice", "alice", contact),
                destination=bot,
                credentials=DigestClient("bob", "bob-demo"),
            )
            assert sent.status == 200
            reply = await asyncio.wait_for(inbox.get(), 5)
        assert b"Design review" in reply.body and b"Weekly sync" not in reply.body
    finally:
        await runtime.stop()


async def test_behind_a_proxy_only_the_proxy_is_believed(tmp_path: Path) -> None:
    inbox: asyncio.Queue[Request] = asyncio.Queue()
    async with user_agent("127.0.0.3", inbox) as proxy:  # the bot's proxy and registrar
        host, port = proxy.address()
        runtime = await run_behind_proxy(tmp_path, host, port)
        try:
            bot = Peer("UDP", *runtime.endpoint.address())
            async with user_agent("127.0.0.2", inbox) as stranger:
                forged = await stranger.request(
                    claim("alice", "alice", str(stranger.contact("x"))), destination=bot
                )
                assert forged.status == 403  # not from the proxy: no claim is believed
            relayed = await proxy.request(
                claim("alice", "bob", str(proxy.contact("bob"))), destination=bot
            )
            assert relayed.status == 200
            while (reply := await asyncio.wait_for(inbox.get(), 5)).method != "MESSAGE":
                continue  # the bot's REGISTER
            # P-Asserted-Identity from the proxy counts, not the From
            assert reply.to.sip_uri.user == "bob"
            assert b"Design review" in reply.body and b"Weekly sync" not in reply.body
        finally:
            await runtime.stop()


async def test_p_asserted_identity_fails_open_no_more(tmp_path: Path) -> None:
    """Item 3: a quoted display name with a comma is read (the sender is bob, not the From's
    alice); a relayed request whose identity cannot be read gets 403 and no reply."""
    inbox: asyncio.Queue[Request] = asyncio.Queue()
    async with user_agent("127.0.0.3", inbox) as proxy:
        host, port = proxy.address()
        runtime = await run_behind_proxy(tmp_path, host, port)
        try:
            bot = Peer("UDP", *runtime.endpoint.address())
            unreadable = claim("alice", "x", str(proxy.contact("alice")))
            unreadable.headers.set("P-Asserted-Identity", '"Doe, Bob <sip:bob@example.test>')
            assert (await proxy.request(unreadable, destination=bot)).status == 403
            quoted = claim("alice", "x", str(proxy.contact("bob")))
            quoted.headers.set("P-Asserted-Identity", '"Doe, Bob" <sip:bob@example.test>')
            assert (await proxy.request(quoted, destination=bot)).status == 200
            while (reply := await asyncio.wait_for(inbox.get(), 5)).method != "MESSAGE":
                continue  # the bot's REGISTER
            assert reply.to.sip_uri.user == "bob"
            assert b"Design review" in reply.body and b"Weekly sync" not in reply.body
        finally:
            await runtime.stop()
