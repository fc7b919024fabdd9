"""IM sessions as Lync / Skype for Business clients open them (INVITE with ``m=message``,
MS-SIPRE): the answer, the requests inside the dialog, BYE, and the cap per sender."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from bot.config import Config
from bot.im.bodies import ms_text_format
from bot.im.content import ImContent
from bot.im.incoming import UNREADABLE, read_request
from bot.im.loops import AUTO_SUBMITTED
from bot.im.outgoing import Payload
from bot.logs import resolved
from bot.sender import Sender
from bot.services.identity import Identified
from bot.sip.dialog import Dialog, DialogId
from bot.sip.errors import SipParseError
from bot.sip.headers import Address
from bot.sip.message import Request, Response, make_response, new_tag
from bot.sip.sdp import SessionDescription, answer_message
from bot.sip.transaction import Peer
from bot.transport.endpoint import ServerRequest, SipEndpoint

log = structlog.get_logger("bot.im")
ACK_WAIT = 2.0
"""Seconds to wait for the ACK of an IM session before sending into it anyway."""
SHUTDOWN_WAIT = 5.0
"""Seconds the BYEs closing the sessions may take at shutdown."""
OFFERS_KEPT = 16
"""SDP offers whose parse is kept (one or two per kind of client)."""


@dataclass(slots=True, kw_only=True)
class ImSession:
    dialog: Dialog
    key: DialogId
    """``dialog.id``, which never changes (Call-ID and both tags): kept, not rebuilt for every
    request."""
    peer: Peer
    """The flow the INVITE came on: requests into the session go back that way."""
    sender: Sender
    answer_sdp: bytes
    last_activity: float
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    running: int = 0
    """Commands of this session under way: it is not idle while one runs (an announcement
    may last up to ``calls.max_duration``, longer than ``im.session_idle_timeout``)."""
    identity: Identified = field(init=False)
    """``Identified(sender)``: what the identity gate answers for a request on the session's
    own flow (made once, not for every request)."""

    def __post_init__(self) -> None:
        self.identity = Identified(self.sender)


@functools.lru_cache(maxsize=OFFERS_KEPT)
def _offer(body: bytes) -> SessionDescription:
    """The SDP offer of an INVITE, parsed, kept: a function of the body only, immutable, and a
    client offers the same each time (our answer is made anew: its session id is unique, RFC
    4566 §5.2). What it raises is not kept."""
    return SessionDescription.parse(body)


Received = Callable[[ImContent, Sender, Request, ImSession, float], None]
"""A message came in on a session and was accepted, at a time of the loop's clock (the IM
service answers it)."""
Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs work in a task of the IM service's."""


class ImSessions:
    def __init__(
        self,
        endpoint: SipEndpoint,
        config: Config,
        identity: Address,
        received: Received,
        spawn: Spawn,
    ):
        self.endpoint = endpoint
        self.config = config
        self.identity = identity
        self._received = received
        self._spawn = spawn
        self._by_id: dict[DialogId, ImSession] = {}
        self._by_sender: dict[Sender, dict[DialogId, ImSession]] = {}
        self._uri = str(identity.uri)
        """The bot's URI as our SDP answers name it (formatted once: the identity is fixed)."""
        self._log = resolved(log)
        """Where each session's opening and closing are logged (bot.logs.resolved: two lines
        per session, not through structlog's lazy proxy each time)."""
        self._contacts: dict[tuple[str, str], str] = {}
        """(our user, transport) -> the Contact of our 200s: the endpoint's addresses are fixed
        once it listens, before any session (made once, not for every session)."""

    def __len__(self) -> int:
        return len(self._by_id)

    def invite(self, incoming: ServerRequest, sender: Sender, now: float) -> Response | None:
        """A new session (an identified sender's INVITE at ``now``, the loop's time): 200 with
        our SDP, or 488."""
        request = incoming.request
        try:
            offer = _offer(request.body) if request.body else None
        except SipParseError:
            offer = None
        host, port = self.endpoint.address(incoming.peer.transport)
        result = answer_message(offer, host, port, self._uri) if offer else None
        if result is None:
            response = make_response(request, 488, "Not Acceptable Here (IM sessions only)")
            response.headers.add("Warning", '304 sipbot "only m=message sessions are accepted"')
            return response
        # The first message may ride in ms-text-format (MS-SIPRE): read before any session
        # exists, so an unreadable one leaves nothing behind (RFC 3261 §21.4.26: 488).
        first = request.headers.get("ms-text-format")
        try:
            text = ms_text_format(first) if first else None
        except UNREADABLE:
            response = make_response(request, 488, "Not Acceptable Here (unreadable message)")
            response.headers.add("Warning", '399 sipbot "ms-text-format could not be read"')
            return response
        tag = new_tag()
        try:
            dialog = Dialog.as_uas(request, tag)
        except SipParseError as exc:  # no Contact or no From tag: RFC 3261 §8.1.1.8, §12.1.1
            return make_response(request, exc.status or 400, exc.response_reason())
        session = ImSession(
            dialog=dialog,
            key=dialog.id,
            peer=incoming.peer,
            sender=sender,
            answer_sdp=result[0].serialize(),
            last_activity=now,
        )
        self._open(session)
        response = self._session_ok(request, session, tag)
        if text is not None:  # said with Supported, so the client does not send it again
            response.headers.add("Supported", "ms-text-format")
            self._received(ImContent("text", text), sender, request, session, now)
        self._log.info("im.session.opened", call_id=request.call_id, sender=sender.address)
        return response

    def _open(self, session: ImSession) -> None:
        """Keep the session; a sender at ``im.max_sessions_per_sender`` loses their least
        recently active one (BYE, RFC 3261 §15.1.1), as closing a conversation window would:
        the user is served, and no sender holds more than the cap."""
        mine = self._by_sender.setdefault(session.sender, {})
        if len(mine) >= self.config.im.max_sessions_per_sender:
            oldest = min(mine.values(), key=lambda s: s.last_activity)
            self.forget(oldest)
            self._spawn(self.bye(oldest, "too many sessions"))
        self._by_id[session.key] = session
        mine[session.key] = session

    def _session_ok(self, request: Request, session: ImSession, tag: str | None) -> Response:
        response = make_response(request, 200, to_tag=tag)
        # RFC 3261 §12.1.1: the 2xx that makes the dialog carries the request's Record-Route,
        # so a record-routing proxy (Kamailio's dispatcher) stays on the caller's route set
        for value in request.headers.values("record-route"):
            response.headers.add("Record-Route", value)
        response.headers.add("Contact", self._contact(self.config.sip.user, session.peer.transport))
        response.headers.add("Content-Type", "application/sdp")
        response.body = session.answer_sdp
        return response

    def _contact(self, user: str, transport: str) -> str:
        key = (user, transport)
        contact = self._contacts.get(key)
        if contact is None:
            contact = self._contacts[key] = str(self.endpoint.contact(user, transport))
        return contact

    def in_session(
        self, incoming: ServerRequest, session: ImSession, now: float
    ) -> Response | None:
        """A request inside ``session`` whose sender the identity gate has let through, at
        ``now`` (the loop's time)."""
        request = incoming.request
        if session.key not in self._by_id:
            return make_response(request, 481)  # closed while the answer was held
        error = session.dialog.receive_request(request)  # RFC 3261 §12.2.2: CSeq order
        if error is not None:
            return error
        session.last_activity = now
        if request.method == "BYE":
            self.forget(session)
            self._log.info("im.session.closed", call_id=request.call_id, by="user")
            return make_response(request, 200)
        if request.method == "INVITE":  # a session refresh: same answer (RFC 3264 §8)
            return self._session_ok(request, session, None)
        if request.method == "INFO":
            return make_response(request, 200)  # typing (<KeyboardActivity>) and the like
        if request.method != "MESSAGE":
            return make_response(request, 405)
        content = read_request(request)
        if isinstance(content, Response):
            return content
        incoming.respond(200)
        self._received(content, session.sender, request, session, now)
        return None

    async def send(self, session: ImSession, payload: Payload, what: str) -> None:
        """``payload`` as a request inside the session (after its ACK); the outcome logged."""
        if not session.acked.is_set():  # the session's first message: after the ACK
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.acked.wait(), ACK_WAIT)
        if session.key not in self._by_id:
            return  # closed meanwhile
        message = session.dialog.create_request(
            payload.method, body=payload.body, content_type=payload.content_type
        )
        message.headers.add(AUTO_SUBMITTED, "auto-replied")
        response = await self.endpoint.request(message, destination=session.peer)
        if response.status == 481:
            self.forget(session)
        elif response.status >= 300:
            log.warning(f"im.{what}.failed", call_id=session.dialog.call_id, status=response.status)

    async def bye(self, session: ImSession, reason: str) -> None:
        self.forget(session)  # (again, harmless: the session may be forgotten already)
        bye = session.dialog.create_request("BYE")
        response = await self.endpoint.request(bye, destination=session.peer)
        self._log.info(
            "im.session.closed",
            call_id=session.dialog.call_id,
            by="bot",
            reason=reason,
            status=response.status,
        )

    def end_sessions_of(self, users: set[str]) -> None:
        """End (BYE) the sessions of these users of our domain."""
        domain = self.config.sip.domain
        for session in list(self._by_id.values()):
            if session.sender.user in users and session.sender.domain == domain:
                self._spawn(self.bye(session, "user changed by reload"))

    def end_idle(self, now: float, timeout: float) -> None:
        """End (BYE) the sessions quiet for more than ``timeout`` seconds, not those with a
        command under way (its reply is still to come inside the session)."""
        quiet = [
            s for s in self._by_id.values() if not s.running and now - s.last_activity > timeout
        ]
        for session in quiet:
            self._spawn(self.bye(session, "idle"))

    async def close(self) -> None:
        """End every session (the bot stopping), waiting at most SHUTDOWN_WAIT for the BYEs."""
        byes = [self.bye(session, "bot stopping") for session in list(self._by_id.values())]
        if byes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*byes), SHUTDOWN_WAIT)

    def forget(self, session: ImSession) -> None:
        if self._by_id.pop(session.key, None) is None:
            return
        mine = self._by_sender.get(session.sender)
        if mine is not None:
            mine.pop(session.key, None)
            if not mine:
                del self._by_sender[session.sender]

    def session_of(self, request: Request) -> ImSession | None:
        """The session of an incoming request: our tag in its To, theirs in its From (RFC 3261
        §12.2.2)."""
        try:
            local, remote = request.to.tag, request.from_.tag
            if local is None or remote is None:
                return None
            return self._by_id.get((request.call_id, local, remote))
        except SipParseError:
            return None
