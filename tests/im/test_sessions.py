"""IM sessions against the bot in this process: a user's session, the bot closing it when
idle, and requests for a dialog it does not know."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import ConferencesConfig, Config, ImConfig, ListenConfig, SipConfig, UserConfig
from bot.runtime import Runtime
from bot.sip import Headers, Request, Response, make_response, parse_uri
from bot.sip.dialog import Dialog
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.sdp import SessionDescription, message_offer
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


async def running(tmp_path: Path, im: ImConfig) -> AsyncIterator[Runtime]:
    config = Config(
        sip=SipConfig(listen=(ListenConfig(transport="udp", port=0),)),
        im=im,
        conferences=ConferencesConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}"),
    )
    bot = Runtime(config)
    await bot.start()
    yield bot
    await bot.stop()


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """Sessions idle for 0.5 s are closed."""
    async for bot in running(tmp_path, ImConfig(session_idle_timeout=0.5)):
        yield bot


@pytest.fixture
async def calm(tmp_path: Path) -> AsyncIterator[Runtime]:
    """Sessions stay open (the default idle timeout); two per sender at most."""
    async for bot in running(tmp_path, ImConfig(max_sessions_per_sender=2)):
        yield bot


class Alice:
    """A user agent that answers 200 to whatever the bot sends and remembers it."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[Request] = asyncio.Queue()

    def __call__(self, incoming: ServerRequest) -> Response:
        self.received.put_nowait(incoming.request)
        return make_response(incoming.request, 200)


def session_invite(alice: SipEndpoint, bot: Peer) -> Request:
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
    return invite


async def open_session(alice: SipEndpoint, bot: Peer) -> tuple[Request, Response]:
    invite = session_invite(alice, bot)
    credentials = DigestClient("alice", "alice-demo")
    return invite, await alice.request(invite, destination=bot, credentials=credentials)


async def test_session_commands_and_idle_close(runtime: Runtime) -> None:
    user = Alice()
    bot = Peer("UDP", *runtime.endpoint.address())
    async with SipEndpoint(
        EndpointConfig(listen=(Listen(port=0),), timers=FAST), handler=user
    ) as alice:
        invite, ok = await open_session(alice, bot)
        assert ok.status == 200 and b"m=message" in ok.body
        dialog = Dialog.as_uac(invite, ok)
        alice.client.send_ack(dialog.create_ack(invite.cseq.seq, via=alice.via()), bot)
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


def endpoint_on(host: str, handler: Alice | None = None) -> SipEndpoint:
    return SipEndpoint(
        EndpointConfig(listen=(Listen(host=host, port=0),), timers=FAST), handler=handler
    )


async def test_in_dialog_requests_are_re_identified(calm: Runtime) -> None:
    """Item 2: knowing a session's Call-ID and tags proves nothing. From another source
    (127.0.0.2) a MESSAGE, INFO or BYE inside alice's session is challenged; bob's credentials
    are refused; alice's own, from there, are taken and answered inside her session."""
    runtime = calm
    user = Alice()
    bot = Peer("UDP", *runtime.endpoint.address())
    assert runtime.im is not None
    async with endpoint_on("127.0.0.1", user) as alice, endpoint_on("127.0.0.2") as mallory:
        invite, ok = await open_session(alice, bot)
        dialog = Dialog.as_uac(invite, ok)
        alice.client.send_ack(dialog.create_ack(invite.cseq.seq, via=alice.via()), bot)

        def inside(method: str, body: bytes = b"") -> Request:
            return dialog.create_request(
                method, via=mallory.via(), body=body, content_type="text/plain" if body else None
            )

        for method, body in (("MESSAGE", b"my meetings"), ("INFO", b""), ("BYE", b"")):
            refused = await mallory.request(inside(method, body), destination=bot)
            assert refused.status == 401, method
        as_bob = await mallory.request(
            inside("MESSAGE", b"my meetings"),
            destination=bot,
            credentials=DigestClient("bob", "bob-demo"),
        )
        assert as_bob.status == 403
        assert runtime.im.session_count == 1  # the forged BYE closed nothing
        inside("MESSAGE")  # (the digest retry used the next CSeq)
        as_alice = await mallory.request(
            inside("MESSAGE", b"help"),
            destination=bot,
            credentials=DigestClient("alice", "alice-demo"),
        )
        assert as_alice.status == 200
        reply = await asyncio.wait_for(user.received.get(), 5)
        # the only command run is alice's own: nothing answered "my meetings"
        assert reply.call_id == invite.call_id and reply.body.startswith(b"Commands:")
        assert user.received.empty()


async def test_behind_a_proxy_in_dialog_requests_from_elsewhere_get_403(tmp_path: Path) -> None:
    """Item 2 behind proxies: a session relayed by the proxy (127.0.0.3) cannot be driven
    from another address, even naming the session exactly."""
    user = Alice()
    async with endpoint_on("127.0.0.3", user) as proxy, endpoint_on("127.0.0.2") as mallory:
        host, port = proxy.address()
        config = Config(
            sip=SipConfig(
                mode="external",
                trusted_proxies=(host,),
                listen=(ListenConfig(transport="udp", host="127.0.0.1", port=0),),
            ),
            registrar={"server": f"sip:{host}:{port}"},
            conferences={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        )
        runtime = Runtime(config)
        await runtime.start()
        try:
            bot = Peer("UDP", *runtime.endpoint.address())
            invite = session_invite(proxy, bot)
            invite.headers.set("P-Asserted-Identity", "<sip:alice@example.test>")
            ok = await proxy.request(invite, destination=bot)
            assert ok.status == 200
            dialog = Dialog.as_uac(invite, ok)
            bye = dialog.create_request("BYE", via=mallory.via())
            assert (await mallory.request(bye, destination=bot)).status == 403
            assert runtime.im is not None and runtime.im.session_count == 1
        finally:
            await runtime.stop()


async def test_a_reload_ends_the_sessions_of_removed_or_repassworded_users(
    calm: Runtime,
) -> None:
    runtime = calm
    user = Alice()
    bot = Peer("UDP", *runtime.endpoint.address())
    async with endpoint_on("127.0.0.1", user) as alice:
        invite, ok = await open_session(alice, bot)
        assert ok.status == 200
        new = runtime.config.model_copy(
            update={
                "registrar": runtime.config.registrar.model_copy(
                    update={
                        "users": {
                            "alice": UserConfig(password="changed"),
                            "bob": UserConfig(password="bob-demo"),
                        }
                    }  # fmt: skip
                )
            }
        )
        runtime.reload(new)
        bye = await asyncio.wait_for(user.received.get(), 5)
        assert bye.method == "BYE" and bye.call_id == invite.call_id
        assert runtime.im is not None and runtime.im.session_count == 0


async def test_a_sender_over_the_session_cap_loses_the_oldest_session(calm: Runtime) -> None:
    """Item 12: im.max_sessions_per_sender (2 here); a third INVITE closes the first."""
    user = Alice()
    bot = Peer("UDP", *calm.endpoint.address())
    async with endpoint_on("127.0.0.1", user) as alice:
        calls = [await open_session(alice, bot) for _ in range(3)]
        assert all(ok.status == 200 for _, ok in calls)
        bye = await asyncio.wait_for(user.received.get(), 5)
        assert bye.method == "BYE" and bye.call_id == calls[0][0].call_id
        assert calm.im is not None and calm.im.session_count == 2


async def test_the_same_offer_twice_gets_answers_of_their_own(calm: Runtime) -> None:
    """A client offers the very same SDP for each session (SIPp's scenarios do): the offer's
    reading may be kept, but each answer is made anew, its session id its own (RFC 4566
    §5.2: with the origin's other fields, a globally unique identifier)."""
    bot = Peer("UDP", *calm.endpoint.address())
    offer = (
        b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=session\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=message 5060 sip null\r\na=accept-types:text/plain\r\n"
    )
    async with endpoint_on("127.0.0.1") as alice:
        answers = []
        for _ in range(2):
            invite = session_invite(alice, bot)
            invite.body = offer
            credentials = DigestClient("alice", "alice-demo")
            ok = await alice.request(invite, destination=bot, credentials=credentials)
            assert ok.status == 200
            answers.append(SessionDescription.parse(ok.body))
        assert answers[0].origin != answers[1].origin
        for answer in answers:
            (stream,) = answer.media
            assert stream.kind == "message" and stream.port == calm.endpoint.address()[1]
            assert stream.attribute("accept-types") == "text/plain"


UNREADABLE = [
    ("text/plain; charset=base64", b"aGVsbG8="),
    ("text/plain; charset=idna", b"\xff\xfehelp"),
    ("text/plain; charset=zlib", b"x\x9c+\xc9\xc8,\x06\x00\x04]\x01\xc1"),
]


@pytest.mark.parametrize(("content_type", "body"), UNREADABLE)
async def test_an_unreadable_body_is_unsupported_and_leaves_no_session(
    calm: Runtime, content_type: str, body: bytes
) -> None:
    """Item 11: a pager MESSAGE gets 415, an INVITE whose ms-text-format holds it 488, and no
    session is left behind (it used to be registered first and leak until idle)."""
    bot = Peer("UDP", *calm.endpoint.address())
    async with endpoint_on("127.0.0.1") as alice:
        message = Request(
            "MESSAGE",
            parse_uri(f"sip:bot@{bot.host}:{bot.port}"),
            Headers.of(
                ("From", f"<sip:alice@example.test>;tag={new_tag()}"),
                ("To", "<sip:bot@example.test>"),
                ("Call-ID", new_tag()),
                ("CSeq", "1 MESSAGE"),
                ("Content-Type", content_type),
            ),
            body,
        )
        pager = await alice.request(
            message, destination=bot, credentials=DigestClient("alice", "alice-demo")
        )
        assert pager.status == 415
        invite = session_invite(alice, bot)
        encoded = base64.b64encode(body).decode()
        invite.headers.add("ms-text-format", f"{content_type}; ms-body={encoded}")
        refused = await alice.request(
            invite, destination=bot, credentials=DigestClient("alice", "alice-demo")
        )
        assert refused.status == 488
        assert calm.im is not None and calm.im.session_count == 0
        assert not calm.im.sessions._by_id and not calm.im.sessions._by_sender


async def test_an_invite_without_contact_gets_400_and_leaves_no_session(calm: Runtime) -> None:
    """RFC 3261 §8.1.1.8: an INVITE must carry a Contact; one without cannot start a dialog
    (§12.1.1) and is a bad request, not a 500 (found by bench/fuzz_live.py)."""
    bot = Peer("UDP", *calm.endpoint.address())
    async with endpoint_on("127.0.0.1") as alice:
        invite = session_invite(alice, bot)
        invite.headers.remove("contact")
        refused = await alice.request(
            invite, destination=bot, credentials=DigestClient("alice", "alice-demo")
        )
        assert refused.status == 400, refused.reason
        assert calm.im is not None and calm.im.session_count == 0


async def test_the_2xx_carries_the_invites_record_route_in_order(calm: Runtime) -> None:
    """RFC 3261 §12.1.1: a record-routing proxy (Kamailio's dispatcher) in front of the bot
    stays on the route set only if the bot's 200 copies Record-Route."""
    bot = Peer("UDP", *calm.endpoint.address())
    async with SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST)) as alice:
        invite = session_invite(alice, bot)
        routes = ["<sip:192.0.2.1;lr;ftag=a>", "<sip:192.0.2.2:5070;lr>"]
        for route in routes:
            invite.headers.add("Record-Route", route)
        ok = await alice.request(
            invite, destination=bot, credentials=DigestClient("alice", "alice-demo")
        )
        assert ok.status == 200
        assert ok.headers.values("record-route") == routes
        assert Dialog.as_uac(invite, ok).route_set == list(reversed(routes))


async def test_each_session_s_200_names_the_bot_s_contact_on_its_own_transport(
    tmp_path: Path,
) -> None:
    """RFC 3261 §12.1.1: the 2xx's Contact is where the session's requests go - the bot's
    address over the transport the INVITE came on, the same for every session on it."""
    listen = (ListenConfig(transport="udp", port=0), ListenConfig(transport="tcp", port=0))
    config = Config(
        sip=SipConfig(listen=listen),
        conferences=ConferencesConfig(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}"),
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        udp = runtime.endpoint.address("UDP")
        tcp = runtime.endpoint.address("TCP")
        endpoint = EndpointConfig(
            listen=(Listen(port=0), Listen(transport="TCP", port=0)), timers=FAST
        )
        async with SipEndpoint(endpoint) as alice:
            contacts = []
            for transport, (host, port) in (("UDP", udp), ("TCP", tcp), ("UDP", udp)):
                invite, ok = await open_session(alice, Peer(transport, host, port))
                assert ok.status == 200
                contacts.append(str(ok.contacts[0].uri))
        assert contacts == [
            f"sip:bot@{udp[0]}:{udp[1]}",
            f"sip:bot@{tcp[0]}:{tcp[1]};transport=tcp",
            f"sip:bot@{udp[0]}:{udp[1]}",
        ]
    finally:
        await runtime.stop()
