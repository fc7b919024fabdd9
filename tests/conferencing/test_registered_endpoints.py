"""``registered`` user endpoints against the focus-factory double in its authenticating mode
(Digest as a front end asks for it, REGISTER kept as a registrar keeps it): one REGISTER client
and one DigestClient per user, so the user's requests after the first are pre-authorized
(RFC 3261 §22.3), its refreshes keep the Call-ID with a rising CSeq (§10.2.4), a 423 and the
granted lifetime are honoured (§10.2.8, §10.2.4), and shutting down un-registers (§10.2.2)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.commands.context import Sender
from bot.conferencing.acting import Registering
from bot.conferencing.c3p import C3pBackend
from bot.conferencing.endpoints import UserEndpointPool
from bot.conferencing.services import ConferenceError
from bot.config import Config
from bot.runtime import Runtime
from bot.sip.transaction import TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, SipEndpoint
from tests.doubles.focus_factory import FocusFactory

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
ALICE = Sender("alice", "contoso.com")
PASSWORDS = {"alice": "wonderland"}


@dataclass
class Setup:
    factory: FocusFactory
    registering: Registering
    pool: UserEndpointPool


@pytest.fixture
async def factory() -> AsyncIterator[FocusFactory]:
    double = FocusFactory(passwords=dict(PASSWORDS), min_expires=60, max_expires=90)
    yield double
    await double.close()


async def setup(factory: FocusFactory, bot: SipEndpoint, expires: int) -> Setup:
    server = await factory.start(FAST)
    registering = Registering(bot, server, PASSWORDS, expires)
    backend = C3pBackend(bot, server, timeout=2.0, credentials=registering.credentials)
    return Setup(factory, registering, UserEndpointPool(backend, establish=registering))


def bot_endpoint() -> SipEndpoint:
    return SipEndpoint(EndpointConfig(listen=(Listen(port=0),), timers=FAST))


async def test_a_second_c3p_request_of_the_user_is_preauthorized(factory: FocusFactory) -> None:
    """The issue's done-when: the user's second C3P request goes out with credentials and is
    not challenged (a DigestClient per request paid a 407 round trip every time)."""
    async with bot_endpoint() as bot:
        s = await setup(factory, bot, expires=600)
        alice = await s.pool.get(ALICE)
        now = datetime.now(UTC)
        assert await alice.conferences.summaries(now) == []
        before = len(factory.wire)
        assert await alice.conferences.summaries(now) == []
        assert await alice.conferences.details("ABCDEF12") is None
        assert factory.wire[before:] == [("SERVICE", True, 200), ("SERVICE", True, 200)]
        # the first SERVICE met the proxy's challenge once; REGISTER the registrar's
        assert [(m, s) for m, _, s in factory.wire[:before]] == [
            ("REGISTER", 401),
            ("REGISTER", 200),
            ("SERVICE", 407),
            ("SERVICE", 200),
        ]


async def test_refreshes_keep_the_call_id_honour_the_grant_and_stop_unregisters(
    factory: FocusFactory,
) -> None:
    async with bot_endpoint() as bot:
        s = await setup(factory, bot, expires=600)
        alice = await s.pool.get(ALICE)
        # asked 600, granted 90 (the Contact's expires): good for 80 % of the grant
        assert 60 < alice.valid_until - time.monotonic() <= 0.8 * 90
        alice.valid_until = 0.0  # the registration ran out: the pool establishes again
        again = await s.pool.get(ALICE)
        assert again is not alice
        await s.registering.close()
        first, refresh, removal = factory.registers
        assert first.call_id == refresh.call_id == removal.call_id
        assert first.cseq.seq < refresh.cseq.seq < removal.cseq.seq
        assert removal.headers.get("expires") == "0"
        # the refresh and the removal were pre-authorized: no challenge after the first
        assert [s for m, _, s in factory.wire if m == "REGISTER"] == [401, 200, 200, 200]
        await s.registering.close()  # nothing registered any more: nothing sent
        assert len(factory.registers) == 3


async def test_a_423_raises_the_interval_to_min_expires(factory: FocusFactory) -> None:
    async with bot_endpoint() as bot:
        s = await setup(factory, bot, expires=30)
        alice = await s.pool.get(ALICE)
        assert [s for m, _, s in factory.wire] == [401, 423, 200]
        assert factory.registers[-1].headers.get("expires") == "60"
        assert 0.8 * 60 - 5 < alice.valid_until - time.monotonic() <= 0.8 * 60


async def test_wrong_credentials_cost_two_requests_and_a_reply(factory: FocusFactory) -> None:
    factory.passwords = {"alice": "something else"}
    async with bot_endpoint() as bot:
        s = await setup(factory, bot, expires=600)
        with pytest.raises(ConferenceError, match="could not sign in as alice@contoso.com"):
            await s.pool.get(ALICE)
        assert factory.wire == [("REGISTER", False, 401), ("REGISTER", True, 401)]
        await s.registering.close()  # never registered: nothing to remove
        assert len(factory.wire) == 2


async def test_the_runtime_acts_through_registrations_and_removes_them_at_stop(
    factory: FocusFactory, tmp_path: Path
) -> None:
    """``sipbot run`` with registered user endpoints: "my meetings" twice costs one challenge
    per kind of request, and stopping the bot un-registers the user (RFC 3261 §10.2.2)."""
    server = await factory.start(FAST)
    config = Config.model_validate(
        {
            "sip": {"domain": "contoso.com", "listen": [{"transport": "udp", "port": 0}]},
            "acl": {"allowed_domains": ["contoso.com"]},
            "conferences": {
                "backend": "c3p",
                "c3p": {"server": f"sip:{server.host}:{server.port}", "digest": True},
                "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                "endpoints": {"mode": "registered", "credentials": PASSWORDS},
            },
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    try:
        for _ in range(2):
            reply = await runtime.dispatcher.dispatch(ALICE, "my meetings")
            assert "no upcoming conferences" in reply
    finally:
        await runtime.stop()
    assert [(m, s) for m, _, s in factory.wire] == [
        ("REGISTER", 401),
        ("REGISTER", 200),
        ("SERVICE", 407),
        ("SERVICE", 200),
        ("SERVICE", 200),
        ("REGISTER", 200),
    ]
    assert factory.registers[-1].headers.get("expires") == "0"
