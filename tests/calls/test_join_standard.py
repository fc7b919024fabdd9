"""Joining an RFC 4579 conference on the bot's real stack (tests/calls/join_bot.py): the audio
call, then the conference event package (RFC 4575) when the answer shows a focus (Contact
;isfocus, or Allow-Events: conference), against a small RFC 4579 focus on a real endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.calls.join import Joiner, av_mcu_uri, focus_of, is_lync_focus
from bot.conferencing.roster import Roster, RosterChange
from bot.sip.dialog import Dialog
from bot.sip.message import Request, Response, make_response, new_tag
from bot.sip.sdp import SessionDescription
from bot.sip.sdp_audio import AudioPolicy, answer_audio
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.calls.join_bot import JoinBot, join_bot, join_config, until

FULL = Path(__file__).parent.parent / "data/conference-info/rfc4575-6.1-full.xml"
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


@dataclass
class Bridge:
    """A conference bridge: answers INVITEs with audio (PCMU, SDES keys taken); as a focus
    (``focus``) it marks its Contact ``;isfocus`` (RFC 4579 §3.3) and serves the conference
    event package: 200 to SUBSCRIBE, a full NOTIFY, a terminated one for ``Expires: 0``."""

    focus: bool = True
    endpoint: SipEndpoint | None = None
    log: list[str] = field(default_factory=list)
    notify_statuses: list[int] = field(default_factory=list)
    dialogs: dict[str, Dialog] = field(default_factory=dict)
    """Call-ID -> the subscription's dialog (its NOTIFYs in CSeq order, RFC 3261 §12.2.1.1)."""
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def contact(self) -> str:
        assert self.endpoint is not None
        return "sip:conf42@{}:{}".format(*self.endpoint.address())

    def handle(self, incoming: ServerRequest) -> Response:
        request = incoming.request
        self.log.append(f"{request.method}{' in dialog' if request.to.tag else ''}")
        if request.method == "INVITE" and request.to.tag is None:
            result = answer_audio(
                SessionDescription.parse(request.body), "127.0.0.1", 40000, AudioPolicy()
            )
            assert result is not None
            response = self._ok(request, new_tag())
            response.headers.add("Content-Type", "application/sdp")
            response.body = result[0].serialize()
            return response
        if request.method == "SUBSCRIBE" and self.focus:
            expires = request.headers.get("expires") or "600"
            self.log[-1] += f" expires={expires}"
            tag = request.to.tag or new_tag()
            dialog = self.dialogs.setdefault(request.call_id, Dialog.as_uas(request, tag))
            state = "terminated;reason=timeout" if expires == "0" else "active;expires=600"
            self._spawn(self._notify(dialog, state))
            response = self._ok(request, tag)
            response.headers.add("Expires", "0" if expires == "0" else "600")
            return response
        if request.method == "BYE":
            return make_response(request, 200)
        return make_response(request, 405)

    def _ok(self, request: Request, tag: str) -> Response:
        response = make_response(request, 200, to_tag=None if request.to.tag else tag)
        mark = ";isfocus" if self.focus else ""
        response.headers.add("Contact", f"<{self.contact}>{mark}")
        return response

    async def _notify(self, dialog: Dialog, state: str) -> None:
        assert self.endpoint is not None
        notify = dialog.create_request(
            "NOTIFY",
            contact=self.endpoint.contact("conf42"),
            body=FULL.read_bytes(),
            content_type="application/conference-info+xml",
        )
        notify.headers.add("Event", "conference")
        notify.headers.add("Subscription-State", state)
        self.notify_statuses.append((await self.endpoint.request(notify)).status)

    def _spawn(self, work: object) -> None:
        task = asyncio.ensure_future(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@pytest.fixture
async def bridge() -> AsyncIterator[tuple[Bridge, JoinBot]]:
    bridge = Bridge()
    bridge.endpoint = SipEndpoint(
        EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST),
        handler=bridge.handle,
    )
    async with bridge.endpoint:
        async with join_bot(join_config(Peer("UDP", *bridge.endpoint.address()))) as bot:
            yield bridge, bot


async def test_a_focus_answer_brings_the_roster(bridge: tuple[Bridge, JoinBot]) -> None:
    focus, bot = bridge
    joined_users: list[str] = []

    def seen(change: RosterChange, roster: Roster) -> None:
        joined_users.extend(change.joined)

    joined = await Joiner(bot.calls, bot.router, bot.config).join(
        "sip:standup@pbx.example.test", on_roster=seen
    )
    assert joined.call.remote == "sip:standup@pbx.example.test" and joined.focus is None
    assert joined.call.session.codec == "PCMU"
    assert joined.roster is not None
    roster = joined.roster
    await until(lambda: roster.version == 1, "the first NOTIFY")
    assert set(roster.users) == {"sip:bob@example.com", "sip:alice@example.com"}
    assert joined_users != []
    await joined.leave()
    await until(lambda: len(focus.notify_statuses) == 2, "the terminated NOTIFY")
    assert focus.log == [
        "INVITE", "SUBSCRIBE expires=3600", "BYE in dialog", "SUBSCRIBE in dialog expires=0",
    ]  # fmt: skip
    assert focus.notify_statuses == [200, 200]
    assert len(bot.router) == 0 and len(bot.calls) == 0


async def test_a_plain_answer_joins_without_a_roster(bridge: tuple[Bridge, JoinBot]) -> None:
    bridge_, bot = bridge
    bridge_.focus = False
    joined = await Joiner(bot.calls, bot.router, bot.config).join("sip:7000@pbx.example.test")
    assert joined.roster is None and joined.subscription is None
    await joined.leave()
    assert bridge_.log == ["INVITE", "BYE in dialog"] and len(bot.router) == 0


def answer(*headers: tuple[str, str]) -> Response:
    response = Response(200, None)
    for name, value in headers:
        response.headers.add(name, value)
    return response


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
