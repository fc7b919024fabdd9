"""Calls in the running bot (embedded mode): a registered user is called at their binding, and
requests inside the call pass the identity gate's dialog-flow decision (bot.services.identity)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.calls.audio import CallFailed
from bot.config import Config
from bot.runtime import Runtime
from bot.sip.digest import DigestClient
from bot.sip.message import new_request
from bot.sip.sdp import SessionDescription
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri, parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint

from .conftest import FAST, POLICY, WAIT, Callee, Streams


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "registrar": {"users": {"carol": {"password": "carol-pw"}}},
            "conferences": {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}"},
        }
    )
    bot = Runtime(config)
    bot.calls.streams = Streams()
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def register(callee: Callee, bot: Peer) -> None:
    request = new_request(
        "REGISTER",
        parse_uri("sip:example.test"),
        from_="<sip:carol@example.test>",
        to="<sip:carol@example.test>",
        contact=callee.endpoint.contact("carol"),
        headers=[("Expires", "300")],
    )
    response = await callee.endpoint.request(
        request, destination=bot, credentials=DigestClient("carol", "carol-pw")
    )
    assert response.status == 200


async def test_a_registered_user_is_called_at_their_binding(
    runtime: Runtime, callee: Callee
) -> None:
    bot = Peer("UDP", *runtime.endpoint.address())
    with pytest.raises(CallFailed, match="is not available right now"):
        await runtime.calls.call("sip:carol@example.test")  # not registered yet
    await register(callee, bot)
    call = await runtime.calls.call("sip:carol@example.test")
    invite = callee.invites[0]
    assert str(invite.uri) == str(callee.endpoint.contact("carol").uri)  # the binding
    assert str(invite.to.uri) == "sip:carol@example.test"
    await callee.next("ACK")
    assert runtime.status()["IM sessions"] == 0  # a call is no IM session
    # someone else who learnt the dialog's identifiers: challenged like a new request
    assert callee.dialog is not None
    stranger_bye = callee.dialog.create_request("BYE")
    async with SipEndpoint(
        EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST, policy=POLICY)
    ) as stranger:
        refused = await stranger.request(stranger_bye, destination=bot)
    assert refused.status == 401 and not call.ended.is_set()
    bye = await callee.send("BYE")  # from the flow the call went to: believed
    assert bye.status == 200
    await asyncio.wait_for(call.ended.wait(), WAIT)
    assert call.end_reason == "sip:carol@example.test hung up."


async def test_the_bot_stopping_hangs_up(runtime: Runtime, callee: Callee) -> None:
    call = await runtime.calls.call(callee.uri)
    await runtime.calls.close()
    await callee.next("BYE")
    assert call.ended.is_set()
    assert len(runtime.router) == 0


async def test_a_reload_changes_the_next_calls(runtime: Runtime, callee: Callee) -> None:
    new = Config.model_validate(
        {**runtime.config.model_dump(), "calls": {"answer_timeout": 0.5}, "media": {"srtp": "off"}}
    )
    outcome = runtime.reload(new)
    assert outcome.restart_needed == ()
    callee.plan.status = None
    with pytest.raises(CallFailed, match="did not answer within 0.5 s"):
        await runtime.calls.call(callee.uri)
    assert SessionDescription.parse(callee.invites[0].body).media[0].attribute("crypto") is None


async def test_a_gruu_is_not_the_registered_users_bindings(
    runtime: Runtime, callee: Callee
) -> None:
    """A Lync focus is carol's GRUU (``;gruu;opaque=app:conf:focus:…``, LYNC.md §2.1): one
    instance, not her address of record - never her softphone (RFC 5627 §3.1)."""
    await register(callee, Peer("UDP", *runtime.endpoint.address()))
    binding = str(callee.endpoint.contact("carol").uri)
    aor = parse_uri("sip:carol@example.test")
    assert isinstance(aor, SipUri)
    assert [str(uri) for uri, _ in runtime.calls._places(aor, str(aor))] == [binding]
    for gruu in (
        "sip:carol@example.test;gruu;opaque=app:conf:focus:id:JL3GPNYP",
        "sip:carol@example.test;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ):
        uri = parse_uri(gruu)
        assert isinstance(uri, SipUri)
        assert runtime.calls._places(uri, gruu) == [(uri, None)]
