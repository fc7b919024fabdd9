"""Joining an RFC 4579 conference: the audio call, then the conference event package when the
answer shows a focus (Contact ;isfocus, or Allow-Events: conference) - here SIPp plays the
focus's subscription side; the call is a stand-in for owner C's AudioCall."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from bot.calls.join import Joiner, av_mcu_uri, focus_of, is_lync_focus
from bot.conferencing.roster import Roster, RosterChange
from bot.config import Config
from bot.sip.message import Response
from bot.sip.transaction import Peer
from bot.transport.endpoint import SipEndpoint
from tests.calls.join_standins import SCENARIOS, StandInRouter, bot_endpoint, until
from tests.peers.conftest import Process, free_port, listening, processes, start

__all__ = ["processes"]  # the fixture, from tests/peers
CONFIG = Config.model_validate({"sip": {"user": "bot", "domain": "example.test"}})


def answer(*headers: tuple[str, str]) -> Response:
    response = Response(200, None)
    for name, value in headers:
        response.headers.add(name, value)
    return response


@dataclass
class Invite:
    response: Response
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def hangup(self) -> None:
        self.ended.set()


@dataclass
class Call:
    invite: Invite
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: bool = False

    async def hangup(self) -> None:
        self.hung_up = True


class Calls:
    """Calls.call answering with ``response``; records what was called and how."""

    def __init__(self, endpoint: SipEndpoint, response: Response):
        self.endpoint = endpoint
        self.response = response
        self.called: list[tuple[str, bool]] = []
        self.made: list[Call] = []

    async def call(self, target: str, *, lync: bool = False) -> Call:
        self.called.append((target, lync))
        self.made.append(Call(Invite(self.response)))
        return self.made[-1]

    async def invite(self, *args: object, **kwargs: object) -> Invite:
        raise AssertionError("no focus INVITE on the standards path")


@pytest.mark.peer
async def test_a_focus_answer_brings_the_roster(processes: list[Process]) -> None:
    port = free_port()
    sipp = await start(
        "sipp", "-sf", str(SCENARIOS / "focus_conference.xml"), "-m", "1", "-i", "127.0.0.1",
        "-p", str(port), "-nostdin", "-timeout", "30s", "-timeout_error",
    )  # fmt: skip
    processes.append(sipp)
    await listening(port)
    router = StandInRouter()
    endpoint = await bot_endpoint(router, Peer("UDP", "127.0.0.1", port))
    focus = f"sip:conf42@127.0.0.1:{port}"
    calls = Calls(endpoint, answer(("Contact", f"<{focus}>;isfocus")))
    joined_users: list[str] = []

    def seen(change: RosterChange, roster: Roster) -> None:
        joined_users.extend(change.joined)

    try:
        joiner = Joiner(calls, router, CONFIG)  # type: ignore[arg-type]
        joined = await joiner.join("sip:standup@pbx.example.test", on_roster=seen)
        assert calls.called == [("sip:standup@pbx.example.test", False)]
        assert joined.roster is not None and joined.focus is None
        await until(lambda: "sip:dave@example.test" in joined_users, "dave, after the gap")
        await joined.leave()
        assert calls.made[0].hung_up
        assert await sipp.wait(30) == 0, sipp.text  # it saw the Expires: 0
    finally:
        await endpoint.close()


async def test_a_plain_answer_joins_without_a_roster() -> None:
    calls = Calls(None, answer(("Contact", "<sip:bridge@pbx.example.test>")))  # type: ignore[arg-type]
    joined = await Joiner(calls, StandInRouter(), CONFIG).join("sip:7000@pbx.example.test")  # type: ignore[arg-type]
    assert joined.roster is None and joined.subscription is None
    await joined.leave()
    assert calls.made[0].hung_up


def test_uris_and_focus_markers() -> None:
    focus = "sip:alice@contoso.com;gruu;opaque=app:conf:focus:id:JL3GPNYP"
    assert is_lync_focus(focus)
    assert not is_lync_focus("sip:alice@contoso.com;gruu;opaque=app:conf:audio-video:id:X")
    assert not is_lync_focus("sip:confbridge@pbx.example.test")
    assert not is_lync_focus("not a uri")
    assert av_mcu_uri(focus) == "sip:alice@contoso.com;gruu;opaque=app:conf:audio-video:id:JL3GPNYP"
    marked = answer(("Contact", "<sip:conf1@pbx.example.test>;isfocus"))
    assert focus_of(marked) == "sip:conf1@pbx.example.test"
    events = answer(
        ("Contact", "<sip:conf2@10.0.0.1:5070>"), ("Allow-Events", "presence, conference")
    )
    assert focus_of(events) == "sip:conf2@10.0.0.1:5070"
    assert focus_of(answer(("Contact", "<sip:bob@pc.example.test>"))) is None
    assert focus_of(answer(("Allow-Events", "conference"))) is None  # no Contact to ask
