"""The Lync focus + A/V MCU double is strict like the real servers (MS-OCER ms-diagnostics,
MS-SDPEXT): what it refuses, with which status and diagnostic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.conferencing.c3p_join import AddUser
from bot.sip.message import Response, new_request
from bot.sip.sdp_audio import AudioPolicy, IceParams, audio_offer
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.uri import parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.calls.join_bot import BOT
from tests.doubles.lync_focus import LyncFocus

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


def offer(*, crypto: bool = True, ice: bool = True) -> bytes:
    """The bot's Lync audio offer (bot.calls.calls.Calls.call with lync=True), or without its
    SRTP keys or its ICE."""
    policy = AudioPolicy(codecs=("G722", "PCMU", "PCMA"), srtp="prefer" if crypto else "off")
    credentials = IceParams(ufrag="8a1f03c2", pwd="5f0c9e2a7b3d4e6f8a1b2c3d4e5f6a7b")
    return audio_offer(policy, "127.0.0.1", 16384, ice=credentials if ice else None).serialize()


@pytest.fixture
async def pool() -> AsyncIterator[tuple[LyncFocus, SipEndpoint, Peer]]:
    focus = LyncFocus(timers=FAST)
    peer = await focus.start()
    client = SipEndpoint(EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST))
    await client.start()
    try:
        yield focus, client, peer
    finally:
        await client.close()
        await focus.close()


async def send(
    client: SipEndpoint,
    peer: Peer,
    method: str,
    uri: str,
    body: bytes = b"",
    content_type: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    request = new_request(
        method,
        parse_uri(uri),
        from_=f"<{BOT}>",
        to=f"<{uri}>",
        contact=client.contact("bot"),
        body=body,
        content_type=content_type,
        headers=headers,
    )
    return await client.request(request, destination=peer)


def diagnostic(response: Response) -> str:
    return response.headers.get("ms-diagnostics") or ""


async def test_an_sdp_only_focus_invite_gets_3007(
    pool: tuple[LyncFocus, SipEndpoint, Peer],
) -> None:
    focus, client, peer = pool
    response = await send(client, peer, "INVITE", focus.focus_uri, offer(), "application/sdp")
    assert response.status == 400 and diagnostic(response).startswith("3007;")
    assert "AddUser C3P blob invalid." in diagnostic(response)


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.replace(b'entity="{0E1F', b'entity="0E1F').replace(b'AB}"', b'AB"'),
        lambda b: b.replace(b'C3PVersion="1"', b'C3PVersion="2"'),
        lambda b: b.replace(b"<addUser>", b"<addUser><extra/>").replace(b"confEntity", b"x"),
        lambda b: b.replace(b'from="sip:bot@contoso.com"', b'from="sip:eve@contoso.com"'),
        lambda b: b[:-20],
    ],
    ids=["endpoint without braces", "C3P version", "no conferenceKeys", "from", "truncated"],
)
async def test_a_malformed_adduser_gets_3007(
    pool: tuple[LyncFocus, SipEndpoint, Peer], change: object
) -> None:
    focus, client, peer = pool
    add = AddUser(
        focus=focus.focus_uri,
        user=BOT,
        request_id=1,
        endpoint="{0E1F7A3C-9F2B-4C1D-8E5A-1234567890AB}",
    )
    body = change(add.body())  # type: ignore[operator]
    response = await send(client, peer, "INVITE", focus.focus_uri, body, "application/cccp+xml")
    assert response.status == 400 and diagnostic(response).startswith("3007;")
    assert focus.log == []


async def test_subscribing_without_joining_the_focus_is_forbidden(
    pool: tuple[LyncFocus, SipEndpoint, Peer],
) -> None:
    focus, client, peer = pool
    response = await send(
        client, peer, "SUBSCRIBE", focus.focus_uri, headers=(("Event", "conference"),)
    )
    assert response.status == 403 and diagnostic(response).startswith("3014;")


@pytest.mark.parametrize(
    ("crypto", "ice", "content_type", "status", "code"),
    [
        (False, True, "application/sdp", 488, '52017;reason="Encryption levels dont match"'),
        (True, False, "application/sdp", 488, "7008;"),
        (True, True, "text/plain", 415, "7004;"),
    ],
    ids=["plain RTP", "no ICE", "not SDP"],
)
async def test_the_av_mcu_refuses_what_lync_refuses(
    pool: tuple[LyncFocus, SipEndpoint, Peer],
    crypto: bool,
    ice: bool,
    content_type: str,
    status: int,
    code: str,
) -> None:
    focus, client, peer = pool
    body = offer(crypto=crypto, ice=ice)
    response = await send(client, peer, "INVITE", focus.av_uri, body, content_type)
    assert response.status == status and diagnostic(response).startswith(code)
    assert "INVITE av" not in focus.log
