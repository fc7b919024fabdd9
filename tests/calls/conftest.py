"""A bot side (endpoint, DialogRouter, Calls with a stream double) and a callee double (a user
agent server on a real SipEndpoint) on loopback, for the call state machine's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from bot.calls.calls import Calls
from bot.calls.router import DialogRouter, NotMine
from bot.config import Config
from bot.config.announcing import MediaConfig
from bot.media.stream import StreamStats
from bot.sip.dialog import Dialog
from bot.sip.digest import DigestServer
from bot.sip.message import Request, Response, make_response, new_tag
from bot.sip.sdp import SessionDescription
from bot.sip.sdp_audio import AudioPolicy, AudioSession, answer_audio
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.validation import DEFAULT_METHODS, UasPolicy
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)
POLICY = UasPolicy(methods=DEFAULT_METHODS | {"UPDATE"}, extensions=frozenset({"timer"}))
WAIT = 5.0
"""Seconds any awaited event may take in these tests."""


class FakeStream:
    """A stand-in for bot.media.stream.AudioStream: records what the call asks of it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.ice_ufrag = "ufrag123"
        self.ice_pwd = "pwd4567890123456789012"
        self.sample_rate = 8000
        self.started: list[AudioSession] = []
        self.updates: list[AudioSession] = []
        self.closed = asyncio.Event()
        self.stats = StreamStats()
        self.played: list[int] = []
        self.endless = False
        """play() lasts until cancelled (a call that ends while playing)."""
        self.playing = asyncio.Event()
        """play() was entered."""

    def start(self, session: AudioSession) -> None:
        self.started.append(session)
        self.sample_rate = session.sample_rate

    def update(self, session: AudioSession) -> None:
        self.updates.append(session)

    async def play(self, pcm: NDArray[np.int16]) -> float:
        self.played.append(len(pcm))
        self.playing.set()
        if self.endless:
            await asyncio.Event().wait()
        return len(pcm) / self.sample_rate

    async def close(self) -> None:
        self.closed.set()


class Streams:
    """The stream factory handed to Calls: each stream it opened, in order."""

    def __init__(self) -> None:
        self.opened: list[FakeStream] = []

    async def __call__(self, host: str, settings: MediaConfig) -> FakeStream:
        stream = FakeStream(host, settings.port_min + 2 * len(self.opened))
        self.opened.append(stream)
        return stream


@dataclass
class Plan:
    """How the callee answers the next INVITE."""

    status: int | None = 200
    """Final status; None: ringing (180) until CANCELled."""
    policy: AudioPolicy = field(default_factory=lambda: AudioPolicy(srtp="prefer"))
    answer: bytes | None = None
    """An SDP answer of the test's instead of one answer_audio builds."""
    challenge: bool = False
    min_se: int | None = None
    """Refuse an INVITE with Session-Expires below this with 422 (RFC 4028 §6)."""
    session_expires: str | None = None
    allow: str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE"


class Callee:
    """A user agent server: answers INVITEs per :attr:`plan`, keeps the dialog, and can send
    requests into it. Every request it receives (ACK and CANCEL included) goes to
    :attr:`received`."""

    def __init__(self) -> None:
        self.plan = Plan()
        self.endpoint = SipEndpoint(
            EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST, policy=POLICY),
            handler=self.handle,
        )
        self.endpoint.on_ack = lambda ack: self.received.put_nowait(ack)
        self.endpoint.on_cancel = self._cancelled
        self.received: asyncio.Queue[Request] = asyncio.Queue()
        self.dialog: Dialog | None = None
        self.last_dialog: Dialog | None = None
        self.bot: Peer | None = None
        self.invites: list[Request] = []
        self.digest = DigestServer("callee.test")
        self._ringing: dict[str, ServerRequest] = {}
        self.port = 40000

    @property
    def uri(self) -> str:
        return f"sip:carol@127.0.0.1:{self.endpoint.address()[1]}"

    async def next(self, method: str) -> Request:
        """The next request of ``method`` (those of other methods before it are dropped)."""
        while True:
            request = await asyncio.wait_for(self.received.get(), WAIT)
            if request.method == method:
                return request

    def handle(self, incoming: ServerRequest) -> Response | None:
        request = incoming.request
        self.received.put_nowait(request)
        if request.to.tag is not None:
            return self._in_dialog(request)
        if request.method != "INVITE":
            return make_response(request, 405)
        self.invites.append(request)
        self.bot = incoming.peer
        plan = self.plan
        if plan.challenge:
            verdict = self.digest.verify(request, {"bot": "secret"}.get, 0.0, source="127.0.0.1")
            if not verdict.ok:
                response = make_response(request, 401)
                for value in self.digest.challenges(0.0, source="127.0.0.1"):
                    response.headers.add("WWW-Authenticate", value)
                return response
        if plan.min_se is not None:
            asked = int((request.headers.get("session-expires") or "0").split(";")[0])
            if asked < plan.min_se:
                response = make_response(request, 422)
                response.headers.add("Min-SE", str(plan.min_se))
                return response
        if plan.status is None:
            incoming.respond(make_response(request, 180, to_tag=new_tag()))
            self._ringing[request.call_id] = incoming
            return None
        tag = new_tag()
        if not 200 <= plan.status < 300:
            return make_response(request, plan.status, to_tag=tag)
        body = plan.answer
        if body is None:
            result = answer_audio(SessionDescription.parse(request.body), "127.0.0.1", self.port,
                                  plan.policy)  # fmt: skip
            if result is None:
                return make_response(request, 488, to_tag=tag)
            body = result[0].serialize()
        self.dialog = Dialog.as_uas(request, tag)
        return self._ok(request, body, tag)

    def _ok(self, request: Request, body: bytes, tag: str | None) -> Response:
        response = make_response(request, 200, to_tag=tag)
        response.headers.add("Contact", str(self.endpoint.contact("carol")))
        response.headers.add("Allow", self.plan.allow)
        if self.plan.session_expires:
            response.headers.add("Session-Expires", self.plan.session_expires)
            response.headers.add("Require", "timer")
        if body:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body
        return response

    def _in_dialog(self, request: Request) -> Response:
        if self.dialog is None or request.call_id != self.dialog.call_id:
            return make_response(request, 481)
        if request.method == "BYE":
            self.dialog = None
            return make_response(request, 200)
        return self._ok(request, b"", None)

    def _cancelled(self, invite: Request) -> None:
        self.received.put_nowait(Request("CANCEL", invite.uri, invite.headers.copy()))
        ringing = self._ringing.pop(invite.call_id, None)
        if ringing is not None:
            ringing.respond(make_response(invite, 487))

    async def send_stray(self, method: str) -> Response:
        """A request naming the last dialog, after it ended."""
        assert self.last_dialog is not None and self.bot is not None
        return await self.endpoint.request(
            self.last_dialog.create_request(method), destination=self.bot
        )

    async def send(self, method: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
                   ) -> Response:  # fmt: skip
        """A request into the dialog, to the bot."""
        dialog = self.dialog
        assert dialog is not None and self.bot is not None
        self.last_dialog = dialog
        request = dialog.create_request(
            method,
            contact=self.endpoint.contact("carol"),
            body=body,
            content_type="application/sdp" if body else None,
        )
        for name, value in (headers or {}).items():
            request.headers.add(name, value)
        response = await self.endpoint.request(request, destination=self.bot)
        if method == "BYE":
            self.dialog = None
        if method == "INVITE" and 200 <= response.status < 300:
            ack = dialog.create_ack(request.cseq.seq)
            self.endpoint.client.send_ack(ack, self.bot)
        return response


def bot_config(**calls: Any) -> Config:
    return Config.model_validate(
        {
            "sip": {"listen": [{"transport": "udp", "host": "127.0.0.1", "port": 0}]},
            "calls": {"answer_timeout": 2.0, **calls},
        }
    )


@dataclass
class Bot:
    endpoint: SipEndpoint
    router: DialogRouter
    calls: Calls
    streams: Streams


@pytest.fixture
async def callee() -> AsyncIterator[Callee]:
    peer = Callee()
    async with peer.endpoint:
        yield peer


@pytest.fixture
async def make_bot() -> AsyncIterator[Callable[..., Any]]:
    """Builds the bot side with a config of calls.* overrides (and media.* via ``media``)."""
    made: list[Bot] = []

    async def make(media: dict[str, Any] | None = None, **calls: Any) -> Bot:
        config = bot_config(**calls)
        if media:
            config = Config.model_validate({**config.model_dump(), "media": media})
        router = DialogRouter()

        def route(incoming: ServerRequest) -> Response | None:
            routed = router.route(incoming)
            return make_response(incoming.request, 481) if isinstance(routed, NotMine) else routed

        endpoint = SipEndpoint(
            EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST, policy=POLICY),
            handler=route,
        )
        await endpoint.start()
        streams = Streams()
        bot = Bot(endpoint, router, Calls(endpoint, config, router, streams=streams), streams)
        made.append(bot)
        return bot

    yield make
    for bot in made:
        await bot.calls.close()
        await bot.endpoint.close()
