"""Joining a Lync conference end to end against the focus + A/V MCU double over real sockets,
on the bot's real stack (tests/calls/join_bot.py: Calls, DialogRouter, AudioStream): focus
INVITE with addUser → ACK → SUBSCRIBE (state in the 2xx) → A/V MCU INVITE (SDP with ICE and
SRTP keys) → STUN checks answered → SRTP G.722 audio the MCU decodes; leave in LYNC.md §2.6's
order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bot.calls.audio import CallFailed
from bot.calls.join import Joiner, JoinFailed
from bot.conferencing.models import Conference
from bot.conferencing.roster import Roster, RosterChange
from bot.sip.transaction import TimerConfig
from tests.calls.join_bot import WAIT, JoinBot, join_bot, join_config, tone, until
from tests.doubles.lync_focus import LyncFocus

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


@dataclass
class World:
    focus: LyncFocus
    bot: JoinBot
    joiner: Joiner


@pytest.fixture
async def world() -> AsyncIterator[World]:
    focus = LyncFocus(timers=FAST)
    server = await focus.start()
    config = join_config(server)
    try:
        async with join_bot(config) as bot:
            yield World(focus, bot, Joiner(bot.calls, bot.router, config))
    finally:
        await focus.close()


async def test_join_speak_and_leave_in_lyncs_order(world: World) -> None:
    focus = world.focus
    changes: list[RosterChange] = []

    def seen(change: RosterChange, roster: Roster) -> None:
        changes.append(change)

    joined = await world.joiner.join(focus.focus_uri, on_roster=seen)
    # the focus granted more than we asked for (attendee): a trusted app is a presenter
    assert joined.role == "presenter"
    assert joined.roster is not None
    assert joined.roster.conf_uris["audio-video"] == focus.av_uri
    assert focus.log[:4] == ["INVITE focus", "ACK focus", "SUBSCRIBE", "INVITE av"]
    # LYNC.md §2.6: pidgin-sipe's headers, one epid for the focus, its subscription, the MCU
    invite, subscribe, av = focus.received[:3]
    assert (invite.method, subscribe.method, av.method) == ("INVITE", "SUBSCRIBE", "INVITE")
    epid = world.bot.calls.epid
    assert [dict(r.from_.params).get("epid") for r in (invite, subscribe, av)] == [epid] * 3
    assert "ms-sender" in invite.headers.values("supported")
    assert invite.content_type == "application/cccp+xml"
    for request in (invite, subscribe, av):
        assert [str(c.uri) for c in request.contacts] == [
            str(world.bot.endpoint.contact("bot").uri)
        ]
    media = focus.media
    assert media is not None and media.offer is not None and media.offer.codec == "G722"
    assert joined.call.session.codec == "G722" and joined.call.stream.sample_rate == 16000
    await asyncio.wait_for(media.checks_answered.wait(), WAIT)  # ICE: our candidate answers
    # the focus tells us we are in the A/V MCU (a partial notification, version 2 → 3)
    await until(lambda: any("sip:bot@contoso.com" in c.joined for c in changes), "our own join")

    played = await joined.call.play(tone(0.5))
    assert played == pytest.approx(0.5, abs=0.02)
    await until(lambda: media.packets >= 25, "the MCU to decode every packet")
    assert media.rejected == 0
    heard = media.received_audio()
    assert len(heard) == media.packets * 320
    voiced = heard[1600:8000].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(voiced))
    assert abs(np.argmax(spectrum) * 16000 / len(voiced) - 440) < 10  # our tone

    focus.add_participant("sip:carol@contoso.com", "Carol")
    await until(lambda: any("sip:carol@contoso.com" in c.joined for c in changes), "carol")

    await joined.leave()
    await until(lambda: len(world.bot.router) == 0, "every dialog over")
    leaving = [e for e in focus.log if e in ("BYE av", "SUBSCRIBE expires=0", "BYE focus")]
    assert leaving == ["BYE av", "SUBSCRIBE expires=0", "BYE focus"]
    assert focus.notify_statuses == [200]  # the terminated NOTIFY, after the unsubscribe
    assert len(world.bot.calls) == 0
    await joined.leave()  # twice is harmless
    assert focus.log.count("BYE focus") == 1


async def test_without_conf_uris_the_av_mcu_uri_is_derived(world: World) -> None:
    world.focus.list_av_mcu = False
    listed = Conference(  # as "my meetings" lists it (bot.conferencing.c3p)
        conference_id="JL3GPNYP",
        organizer="alice@contoso.com",
        subject="Weekly sync",
        uri=world.focus.focus_uri,
        access_level="same-enterprise",
        start=None,
        end=None,
        expiry=datetime.now(UTC) + timedelta(days=1),
    )
    joined = await world.joiner.join(listed)
    assert joined.call.remote == world.focus.av_uri
    assert joined.roster is not None and joined.roster.conf_uris == {}
    await joined.leave()


async def test_a_refused_av_mcu_leaves_nothing_behind(world: World) -> None:
    """The A/V MCU refuses the call: the subscription and the focus dialog go, in order."""
    focus = world.focus
    focus.refuse_av = 503
    with pytest.raises(CallFailed, match="cannot be reached"):
        await world.joiner.join(focus.focus_uri)
    await until(lambda: len(world.bot.router) == 0, "every dialog over")
    assert [e for e in focus.log if not e.startswith(("NOTIFY", "BENOTIFY"))][-2:] == [
        "SUBSCRIBE expires=0",
        "BYE focus",
    ]
    assert len(world.bot.calls) == 0


async def test_a_failed_adduser_is_a_sentence_and_hangs_up(world: World) -> None:
    world.focus.refuse_reason = "conferenceDoesNotExist"
    with pytest.raises(JoinFailed, match=r"would not let me in \(conferenceDoesNotExist\)"):
        await world.joiner.join(world.focus.focus_uri)
    await until(lambda: "BYE focus" in world.focus.log, "the focus BYE")
    assert "SUBSCRIBE" not in world.focus.log and len(world.bot.router) == 0


async def test_an_unknown_conference_is_a_call_failure(world: World) -> None:
    with pytest.raises(CallFailed, match="no such user"):
        await world.joiner.join("sip:alice@contoso.com;gruu;opaque=app:conf:focus:id:NOSUCH")
    assert len(world.bot.router) == 0 and world.focus.log == []
