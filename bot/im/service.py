"""Instant messaging with people: pager-mode MESSAGE (RFC 3428) and IM sessions as Lync /
Skype for Business clients open them (INVITE with ``m=message``, MS-SIPRE), each command
answered in the mode it came in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from bot.commands.context import Sender
from bot.config import Config
from bot.im import outgoing
from bot.im.bodies import UnsupportedBody, ms_text_format
from bot.im.content import ImContent, read
from bot.im.encoding import ENCODINGS, BadEncoding, BodyTooLarge
from bot.im.loops import AUTO_SUBMITTED, LoopGuard
from bot.im.outgoing import Payload
from bot.im.receipts import ReceiptBook
from bot.services.identity import Identified, IdentityGate, Refused
from bot.services.registrar import Registrar
from bot.sip.dialog import Dialog, DialogTable
from bot.sip.errors import SipParseError
from bot.sip.headers import Address
from bot.sip.message import Request, Response, make_response, new_call_id, new_request, new_tag
from bot.sip.sdp import SessionDescription, answer_message
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri
from bot.transport.endpoint import ServerRequest, SipEndpoint

log = structlog.get_logger("bot.im")
Answer = Callable[[Sender, str, str], Awaitable[str]]
"""(sender, text, call_id) -> reply: the command dispatcher."""
ACCEPTED = (
    "text/plain",
    "text/html",
    "multipart/alternative",
    "message/cpim",
    "message/imdn+xml",
    "application/im-iscomposing+xml",
)
"""What a message to the bot may carry (the Accept of a 415)."""
ACK_WAIT = 2.0
"""Seconds to wait for the ACK of an IM session before sending into it anyway."""
RECEIPT_WAIT = 60.0
"""Seconds after which a receipt we asked for is logged as missing (never asked again)."""
SHUTDOWN_WAIT = 5.0
"""Seconds the BYEs closing the sessions may take at shutdown."""
DELIVERY_WAIT = 32.0
"""Seconds a pager reply may take to reach one of the user's contacts (64*T1, RFC 3261
§17.1.2.2: a non-INVITE transaction's own limit), all contacts tried at once."""
UNREADABLE = (UnsupportedBody, BadEncoding, SipParseError)
"""What decoding an IM body may raise (bot.im.bodies, bot.im.encoding, bot.im.cpim): an
unsupported body (415/488), never a 500."""
Work = Callable[[ServerRequest, Sender], "Response | None"]


@dataclass(slots=True, kw_only=True)
class ImSession:
    dialog: Dialog
    peer: Peer
    """The flow the INVITE came on: requests into the session go back that way."""
    sender: Sender
    answer_sdp: bytes
    last_activity: float
    acked: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True, slots=True)
class Pager:
    """A pager-mode conversation (RFC 3428): what we send goes as new MESSAGEs."""

    sender: Sender
    request: Request
    peer: Peer


def typing_payload(to: Pager | ImSession, state: str) -> Payload | None:
    """Standards clients get isComposing; Lync sessions <KeyboardActivity>, which has no idle."""
    if isinstance(to, ImSession):
        return outgoing.keyboard_activity() if state == "active" else None
    return outgoing.typing(state)


class ImService:
    def __init__(
        self,
        endpoint: SipEndpoint,
        config: Config,
        answer: Answer,
        registrar: Registrar | None,
        gate: IdentityGate | None = None,
    ):
        self.endpoint = endpoint
        self.config = config
        self.answer = answer
        self.registrar = registrar
        self.gate = gate or (registrar.gate if registrar is not None else IdentityGate(config))
        self.dialogs = DialogTable()
        self.sessions: dict[tuple[str, str, str], ImSession] = {}
        self._by_sender: dict[Sender, dict[tuple[str, str, str], ImSession]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        bot = config.sip
        self.identity = Address(
            uri=SipUri(user=bot.user, host=bot.domain), display_name=bot.display_name
        )
        self.loops = LoopGuard(config.im, Sender(bot.user, bot.domain))
        self.receipts = ReceiptBook()

    def reconfigure(self, config: Config) -> None:
        """New IM settings (a config reload)."""
        self.config = config
        self.loops.settings = config.im

    def start(self) -> None:
        self._sweeper = asyncio.ensure_future(self._sweep_idle())

    async def close(self) -> None:
        byes = [self._bye(session, "bot stopping") for session in list(self.sessions.values())]
        if byes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*byes), SHUTDOWN_WAIT)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()

    # --- incoming ----------------------------------------------------------------------------

    def end_sessions_of(self, users: set[str]) -> None:
        """End (BYE) the sessions of these users of our domain: removed, or their password
        changed, by a reload - the identity the session was opened with no longer holds."""
        domain = self.config.sip.domain
        for session in list(self.sessions.values()):
            if session.sender.user in users and session.sender.domain == domain:
                self._spawn(self._bye(session, "user changed by reload"))

    def handle(self, incoming: ServerRequest) -> Response | None:
        """Requests the router gives us: MESSAGE, INVITE, and everything inside a session.
        Who sent each is decided by the identity gate (bot.services.identity), nowhere else."""
        request = incoming.request
        if request.to.tag is not None:
            return self._in_dialog(incoming)
        work: Work
        if request.method == "MESSAGE":
            work = self._pager
        elif request.method == "INVITE":
            work = self._invite
        else:
            return make_response(request, 405)
        return self._admitted(incoming, self.gate.identify(incoming, self._loop.time()), work)

    def _admitted(
        self, incoming: ServerRequest, who: Identified | Refused, work: Work
    ) -> Response | None:
        """Run ``work`` for the identified sender - after the hold the gate asks for (the
        per-user pace) - or send the gate's refusal."""
        if isinstance(who, Refused):
            who.send(incoming)
            return None
        if who.hold <= 0:
            return work(incoming, who.sender)

        def later() -> None:
            response = work(incoming, who.sender)
            if response is not None:
                incoming.respond(response)

        self._loop.call_later(who.hold, later)
        return None

    def on_ack(self, ack: Request) -> None:
        session = self._session_of(ack)
        if session is not None:
            session.acked.set()

    def _pager(self, incoming: ServerRequest, sender: Sender) -> Response | None:
        request = incoming.request
        content = _read(request)
        if isinstance(content, Response):
            return content
        # RFC 3428 §7: the 200 goes out first; the reply is a new MESSAGE of its own
        incoming.respond(200)
        self._received(content, sender, request, Pager(sender, request, incoming.peer))
        return None

    def _received(
        self, content: ImContent, sender: Sender, request: Request, to: Pager | ImSession
    ) -> None:
        """A message is in and accepted: record a receipt, or answer a person's text - never
        anything an automaton sent (bot.im.loops)."""
        if content.receipt is not None:
            self.receipts.record(content.receipt, sender.address)
            return
        if content.kind != "text" or content.text is None:
            return  # typing notices and the like
        automaton = self.loops.from_automaton(request, sender)
        if automaton is not None:
            log.info("im.not_answered", sender=sender.address, reason=automaton,
                     call_id=request.call_id)  # fmt: skip
            return
        if content.message_id and content.wants and self.config.im.receipts.send:
            self._spawn(self._send_receipts(to, sender, content))
        if self.loops.may_reply(sender, self._loop.time()):
            self._spawn(self._reply(to, sender, content, request.call_id))

    async def _reply(
        self, to: Pager | ImSession, sender: Sender, content: ImContent, call_id: str
    ) -> None:
        assert content.text is not None
        typing = self.config.im.typing
        shown = False
        if not typing.send:
            text = await self.answer(sender, content.text, call_id)
        else:  # "bot is typing" when the answer takes longer than typing.after
            answer = asyncio.ensure_future(self.answer(sender, content.text, call_id))
            done, _ = await asyncio.wait({answer}, timeout=typing.after)
            if not done:
                shown = True
                busy = typing_payload(to, "active")
                if busy is not None:
                    await self._send(to, busy, "typing")
            text = await answer
        payload = outgoing.reply(
            text,
            in_cpim=content.in_cpim,
            bot=str(self.identity.uri),
            user=sender.uri,
            ask_receipt=self.config.im.receipts.request,
        )
        if payload.message_id is not None:  # before sending: the receipt may beat the 200
            self.receipts.expect(payload.message_id, sender.address, self._loop.time())
        await self._send(to, payload, "reply")
        if shown:
            idle = typing_payload(to, "idle")
            if idle is not None:
                await self._send(to, idle, "typing")

    async def _send_receipts(
        self, to: Pager | ImSession, sender: Sender, content: ImContent
    ) -> None:
        """RFC 5438 §7: the bot has the message (delivered) and has read it (displayed)."""
        assert content.message_id is not None
        for wanted, kind, status in (
            ("positive-delivery", "delivery", "delivered"),
            ("display", "display", "displayed"),
        ):
            if wanted in content.wants:
                payload = outgoing.receipt(
                    kind, status, content.message_id, bot=str(self.identity.uri), user=sender.uri
                )
                await self._send(to, payload, f"receipt.{kind}")

    async def _send(self, to: Pager | ImSession, payload: Payload, what: str) -> None:
        """Send ``payload`` to the user the way they wrote: a new MESSAGE to their contacts
        (pager), or a request inside their IM session; the outcome is logged."""
        if isinstance(to, ImSession):
            if not to.acked.is_set():  # the session's first message: after the ACK
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(to.acked.wait(), ACK_WAIT)
            if to.dialog.id not in self.sessions:
                return  # closed meanwhile
            message = to.dialog.create_request(
                payload.method, body=payload.body, content_type=payload.content_type
            )
            message.headers.add(AUTO_SUBMITTED, "auto-replied")
            response = await self.endpoint.request(message, destination=to.peer)
            if response.status == 481:
                self._forget(to)
            elif response.status >= 300:
                log.warning(f"im.{what}.failed", call_id=to.dialog.call_id, status=response.status)
            return
        await self._deliver(to, payload, what)

    async def _deliver(self, to: Pager, payload: Payload, what: str) -> None:
        """A pager MESSAGE to every contact of the user at once (parallel forking, RFC 3261
        §16.7), one deadline for all: the first 2xx delivers it, the rest stop being waited."""
        targets = self._targets(to.sender, to.request, to.peer)
        if not targets:
            log.warning(f"im.{what}.no_target", sender=to.sender.address)
            return
        tries = {
            asyncio.ensure_future(
                self.endpoint.request(self._new_message(uri, to.sender, payload), destination=peer)
            ): uri
            for uri, peer in targets
        }
        pending = set(tries)
        deadline = self._loop.time() + DELIVERY_WAIT
        try:
            while pending:
                done, pending = await asyncio.wait(
                    pending,
                    timeout=max(0.0, deadline - self._loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    log.warning(f"im.{what}.failed", sender=to.sender.address, status=408)
                    return
                for task in done:
                    status, target = task.result().status, str(tries[task])
                    if 200 <= status < 300:
                        log.info(f"im.{what}.delivered", sender=to.sender.address,
                                 target=target, status=status)  # fmt: skip
                        return
                    log.warning(f"im.{what}.failed", sender=to.sender.address, status=status,
                                target=target)  # fmt: skip
        finally:
            for task in pending:
                task.cancel()

    def _targets(
        self, sender: Sender, request: Request, peer: Peer
    ) -> list[tuple[SipUri, Peer | None]]:
        """Where a pager reply goes: the sender's registered contacts (over the connection a
        TCP/TLS binding was made on, RFC 5626 §5.3); else the request's Contact over the flow
        it came on; in external mode the sender's address-of-record, via the outbound proxy."""
        out: list[tuple[SipUri, Peer | None]] = []
        if self.registrar is not None:
            for binding in self.registrar.lookup(sender.user, self._loop.time()):
                out.append((binding.uri, binding.peer if binding.peer.reliable else None))
            if out:
                return out
            contacts = request.contacts
            if contacts and isinstance(contacts[0].uri, SipUri):
                out.append((contacts[0].uri, peer))
            return out
        return [(SipUri(user=sender.user, host=sender.domain), None)]

    def _new_message(self, uri: SipUri, sender: Sender, payload: Payload) -> Request:
        return new_request(
            "MESSAGE",
            uri,
            from_=self.identity,
            to=f"<{sender.uri}>",
            call_id=new_call_id(self.config.sip.domain),
            content_type=payload.content_type,
            headers=[(AUTO_SUBMITTED, "auto-replied")],  # bot.im.loops: no other bot answers this
            body=payload.body,
        )

    # --- IM sessions -------------------------------------------------------------------------

    def _invite(self, incoming: ServerRequest, sender: Sender) -> Response | None:
        request = incoming.request
        try:
            offer = SessionDescription.parse(request.body) if request.body else None
        except SipParseError:
            offer = None
        host, port = self.endpoint.address(incoming.peer.transport)
        result = answer_message(offer, host, port, str(self.identity.uri)) if offer else None
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
        session = ImSession(
            dialog=Dialog.as_uas(request, tag),
            peer=incoming.peer,
            sender=sender,
            answer_sdp=result[0].serialize(),
            last_activity=self._loop.time(),
        )
        self._open(session)
        response = self._session_ok(request, session, tag)
        if text is not None:  # said with Supported, so the client does not send it again
            response.headers.add("Supported", "ms-text-format")
            self._received(ImContent("text", text), sender, request, session)
        log.info("im.session.opened", call_id=request.call_id, sender=sender.address)
        return response

    def _open(self, session: ImSession) -> None:
        """Keep the session; a sender at ``im.max_sessions_per_sender`` loses their least
        recently active one (BYE, RFC 3261 §15.1.1), as closing a conversation window would:
        the user is served, and no sender holds more than the cap."""
        mine = self._by_sender.setdefault(session.sender, {})
        if len(mine) >= self.config.im.max_sessions_per_sender:
            oldest = min(mine.values(), key=lambda s: s.last_activity)
            self._forget(oldest)
            self._spawn(self._bye(oldest, "too many sessions"))
        self.dialogs.add(session.dialog)
        self.sessions[session.dialog.id] = session
        mine[session.dialog.id] = session

    def _session_ok(self, request: Request, session: ImSession, tag: str | None) -> Response:
        response = make_response(request, 200, to_tag=tag)
        response.headers.add(
            "Contact", str(self.endpoint.contact(self.config.sip.user, session.peer.transport))
        )
        response.headers.add("Content-Type", "application/sdp")
        response.body = session.answer_sdp
        return response

    def _in_dialog(self, incoming: ServerRequest) -> Response | None:
        request = incoming.request
        session = self._session_of(request)
        if session is None:
            return make_response(request, 481)  # RFC 3261 §12.2.2
        # the dialog's identity holds only on its own flow (bot.services.identity); checked
        # before the dialog sees the request, so a stranger cannot move its CSeq either
        who = self.gate.in_dialog(incoming, session.sender, session.peer, self._loop.time())
        return self._admitted(incoming, who, lambda inc, _: self._in_session(inc, session))

    def _in_session(self, incoming: ServerRequest, session: ImSession) -> Response | None:
        request = incoming.request
        if session.dialog.id not in self.sessions:
            return make_response(request, 481)  # closed while the answer was held
        error = session.dialog.receive_request(request)  # RFC 3261 §12.2.2: CSeq order
        if error is not None:
            return error
        session.last_activity = self._loop.time()
        if request.method == "BYE":
            self._forget(session)
            log.info("im.session.closed", call_id=request.call_id, by="user")
            return make_response(request, 200)
        if request.method == "INVITE":  # a session refresh: same answer (RFC 3264 §8)
            return self._session_ok(request, session, None)
        if request.method == "INFO":
            return make_response(request, 200)  # typing (<KeyboardActivity>) and the like
        if request.method != "MESSAGE":
            return make_response(request, 405)
        content = _read(request)
        if isinstance(content, Response):
            return content
        incoming.respond(200)
        self._received(content, session.sender, request, session)
        return None

    async def _bye(self, session: ImSession, reason: str) -> None:
        self._forget(session)  # (again, harmless: the session may be forgotten already)
        bye = session.dialog.create_request("BYE")
        response = await self.endpoint.request(bye, destination=session.peer)
        log.info(
            "im.session.closed",
            call_id=session.dialog.call_id,
            by="bot",
            reason=reason,
            status=response.status,
        )

    async def _sweep_idle(self) -> None:
        timeout = self.config.im.session_idle_timeout
        while True:
            await asyncio.sleep(min(timeout / 2, 5.0))
            now = self._loop.time()
            for session in [s for s in self.sessions.values() if now - s.last_activity > timeout]:
                self._spawn(self._bye(session, "idle"))
            self.receipts.sweep(now, RECEIPT_WAIT)

    def _forget(self, session: ImSession) -> None:
        if self.sessions.pop(session.dialog.id, None) is None:
            return
        self.dialogs.remove(session.dialog)
        mine = self._by_sender.get(session.sender)
        if mine is not None:
            mine.pop(session.dialog.id, None)
            if not mine:
                del self._by_sender[session.sender]

    def _session_of(self, request: Request) -> ImSession | None:
        try:
            dialog = self.dialogs.match_request(request)
        except SipParseError:
            return None
        return self.sessions.get(dialog.id) if dialog is not None else None

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("im.task.failed", error=repr(task.exception()))

    @property
    def session_count(self) -> int:
        return len(self.sessions)


def _read(request: Request) -> ImContent | Response:
    """The message's content, or the error response its body deserves."""
    try:
        return read(
            request.headers.get("content-type"),
            request.headers.values("content-encoding"),
            request.body,
        )
    except UNREADABLE:
        return _unsupported(request)
    except BodyTooLarge:
        return make_response(request, 413, "Request Entity Too Large (inflated body)")


def _unsupported(request: Request) -> Response:
    """RFC 3261 §21.4.13: 415 with what we do read."""
    response = make_response(request, 415)
    response.headers.add("Accept", ", ".join(ACCEPTED))
    response.headers.add("Accept-Encoding", ", ".join(sorted(ENCODINGS)))
    return response
