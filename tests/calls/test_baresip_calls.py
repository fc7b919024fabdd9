"""The bot calls a real softphone: baresip (Debian baresip-core 1.0, see PEERS.md) registered
as bob on the embedded registrar, answering by itself. The bot reaches bob at his binding and
settles SRTP by SDES with him as ``media.srtp`` and baresip's ``mediaenc`` allow (``srtp``
takes plain RTP/AVP and SDES offers, ``srtp-mand`` only RTP/SAVP). The media stream is the
test double of tests/calls/conftest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bot.calls.audio import CallFailed
from bot.config import Config
from bot.runtime import Runtime
from bot.sip.sdp import SessionDescription
from tests.peers.baresip import listen_port
from tests.peers.conftest import Process, start

from .conftest import WAIT, Streams

CONFIG = """\
module_path /usr/lib/baresip/modules
sip_listen 127.0.0.1:{port}
net_interface 127.0.0.1
dns_server 127.0.0.1:53
statmode_default off
audio_player
audio_source
module g711.so
module srtp.so
module_tmp account.so
"""
ACCOUNT = (
    "<sip:bob@example.test>;auth_pass=bob-pw;answermode=auto;audio_codecs=pcmu;ptime=20;"
    'mediaenc={mediaenc};regint=600;outbound="sip:127.0.0.1:{bot};transport=udp"\n'
)


@pytest.fixture
def streams() -> Streams:
    return Streams()


@pytest.fixture
def media(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(the bot's media.srtp, baresip's mediaenc)."""
    return getattr(request, "param", ("prefer", "srtp"))


@pytest.fixture
async def bot(tmp_path: Path, streams: Streams, media: tuple[str, str]) -> AsyncIterator[Runtime]:
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "registrar": {"users": {"bob": {"password": "bob-pw"}}},
            "media": {"srtp": media[0]},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        }
    )
    runtime = Runtime(config)
    runtime.calls.streams = streams
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


@pytest.fixture
async def bob(bot: Runtime, tmp_path: Path, media: tuple[str, str]) -> AsyncIterator[Process]:
    """baresip registered as bob: returned once the registrar has his binding."""
    folder = tmp_path / "baresip"
    folder.mkdir()
    (folder / "config").write_text(CONFIG.format(port=listen_port()))
    (folder / "accounts").write_text(
        ACCOUNT.format(bot=bot.endpoint.address()[1], mediaenc=media[1])
    )
    phone = await start("baresip", "-f", str(folder))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not bot.registrar or not bot.registrar.lookup("bob", loop.time()):
            assert loop.time() < deadline and phone.proc.returncode is None, phone.text
            await asyncio.sleep(0.05)  # polling the registrar's table until a deadline
        yield phone
    finally:
        await phone.stop()


@pytest.mark.parametrize(
    ("media", "proto", "secure"),
    [
        (("prefer", "srtp"), "RTP/AVP", True),
        (("require", "srtp-mand"), "RTP/SAVP", True),
        (("off", "srtp"), "RTP/AVP", False),
    ],
    indirect=["media"],
)
async def test_the_bot_calls_a_registered_softphone(
    bot: Runtime, bob: Process, streams: Streams, proto: str, secure: bool
) -> None:
    call = await bot.calls.call("sip:bob@example.test")
    assert call.remote == "sip:bob@example.test"
    session = call.session
    assert session.codec == "PCMU" and session.direction == "sendrecv"
    assert session.remote_address == "127.0.0.1"
    assert (session.remote_crypto is not None, session.local_crypto is not None) == (secure,) * 2
    answer = SessionDescription.parse(call.invite.response.body if call.invite.response else b"")
    assert answer.media[0].proto == proto
    assert bot.status()["calls"] == 1
    with capture_logs() as logs:
        await call.hangup()
    assert call.end_reason == "the bot hung up." and bot.status()["calls"] == 0
    assert [e["status"] for e in logs if e["event"] == "calls.bye_answered"] == [200]
    await asyncio.wait_for(streams.opened[0].closed.wait(), WAIT)


@pytest.mark.parametrize("media", [("off", "srtp-mand")], indirect=True)
async def test_a_phone_that_needs_srtp_refuses_plain_rtp(bot: Runtime, bob: Process) -> None:
    with pytest.raises(CallFailed) as info:
        await bot.calls.call("sip:bob@example.test")
    assert str(info.value) == (
        "sip:bob@example.test has no codec in common with the bot (offered PCMU, PCMA),"
        " or needs SRTP (media.srtp: off)."
    )
