"""Joining a Lync conference end to end against the focus + A/V MCU double over real sockets:
focus INVITE with addUser → ACK → SUBSCRIBE (state in the 2xx) → A/V MCU INVITE (SDP with ICE
and SRTP keys) → STUN checks → SRTP audio the MCU decodes; leave in LYNC.md §2.6's order.
Calls and the router are stand-ins (tests/calls/join_standins.py) until owner C's land."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bot.calls.join import Joiner, JoinFailed
from bot.conferencing.models import Conference
from bot.conferencing.roster import Roster, RosterChange
from bot.config import Config
from tests.calls.join_standins import (
    FAST,
    WAIT,
    CallFailed,
    StandInCalls,
    StandInRouter,
    bot_endpoint,
    tone,
    until,
)
from tests.doubles.lync_focus import LyncFocus


@dataclass
class World:
    focus: LyncFocus
    calls: StandInCalls
    router: StandInRouter
    joiner: Joiner


@pytest.fixture
async def world() -> AsyncIterator[World]:
    focus = LyncFocus(timers=FAST)
    peer = await focus.start()
    router = StandInRouter()
    endpoint = await bot_endpoint(router, peer)
    calls = StandInCalls(endpoint, router)
    config = Config.model_validate({"sip": {"user": "bot", "domain": "contoso.com"}})
    try:
        yield World(focus, calls, router, Joiner(calls, router, config))  # type: ignore[arg-type]
    finally:
        for call in calls.calls:
            call.stream.close()
        await endpoint.close()
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
    media = focus.media
    assert media is not None and media.offer is not None and media.offer.codec == "G722"
    await asyncio.wait_for(media.checks_answered.wait(), WAIT)  # ICE: our candidate answers
    # the focus tells us we are in the A/V MCU (a partial notification, version 2 → 3)
    await until(lambda: any("sip:bot@contoso.com" in c.joined for c in changes), "our own join")

    stream = world.calls.calls[0].stream
    sent = stream.send_g722(tone(0.5))
    await until(lambda: media.packets == sent, "the MCU to decode every packet")
    assert media.rejected == 0
    heard = media.received_audio()
    assert len(heard) == sent * 320
    spectrum = np.abs(np.fft.rfft(heard[1600:].astype(np.float64)))
    assert abs(np.argmax(spectrum) * 16000 / len(heard[1600:]) - 440) < 10  # our tone

    focus.add_participant("sip:carol@contoso.com", "Carol")
    await until(lambda: any("sip:carol@contoso.com" in c.joined for c in changes), "carol")

    await joined.leave()
    await until(lambda: "BYE focus" in focus.log, "the focus BYE")
    leaving = [e for e in focus.log if e in ("BYE av", "SUBSCRIBE expires=0", "BYE focus")]
    assert leaving == ["BYE av", "SUBSCRIBE expires=0", "BYE focus"]
    assert world.router.dialogs == {} and world.router.pending == {}
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
    assert world.calls.calls[0].remote == world.focus.av_uri
    assert joined.roster is not None and joined.roster.conf_uris == {}
    await joined.leave()


async def test_a_refused_av_mcu_leaves_nothing_behind(world: World) -> None:
    """An offer without SRTP keys gets 488/52017; the focus dialog and subscription go."""
    focus = world.focus
    original = world.calls.call

    async def plain_call(target: str, *, lync: bool = False) -> object:
        from tests.calls.join_standins import LyncClientMedia

        media = await LyncClientMedia.open()
        try:
            await world.calls.invite(
                target, body=media.offer(crypto=False), content_type="application/sdp"
            )
        finally:
            media.close()
        raise AssertionError("the MCU took an offer without SRTP")

    world.calls.call = plain_call  # type: ignore[method-assign]
    with pytest.raises(CallFailed, match="488"):
        await world.joiner.join(focus.focus_uri)
    world.calls.call = original  # type: ignore[method-assign]
    await until(lambda: "BYE focus" in focus.log, "the focus BYE")
    assert [e for e in focus.log if not e.startswith("NOTIFY")][-2:] == [
        "SUBSCRIBE expires=0",
        "BYE focus",
    ]
    assert world.router.dialogs == {}


async def test_a_failed_adduser_is_a_sentence_and_hangs_up(world: World) -> None:
    world.focus.refuse_reason = "conferenceDoesNotExist"
    with pytest.raises(JoinFailed, match=r"would not let me in \(conferenceDoesNotExist\)"):
        await world.joiner.join(world.focus.focus_uri)
    await until(lambda: "BYE focus" in world.focus.log, "the focus BYE")
    assert "SUBSCRIBE" not in world.focus.log and world.router.dialogs == {}


async def test_an_unknown_conference_is_a_call_failure(world: World) -> None:
    with pytest.raises(CallFailed, match="404"):
        await world.joiner.join("sip:alice@contoso.com;gruu;opaque=app:conf:focus:id:NOSUCH")
    assert world.router.dialogs == {} and world.focus.log == []
