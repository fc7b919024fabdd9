"""Instant messaging with people: pager-mode MESSAGE (RFC 3428) and IM sessions as Lync /
Skype for Business clients open them (INVITE with ``m=message``, MS-SIPRE), each command
answered in the mode it came in. This is the front: who sent a request (the identity gate),
what to answer (the dispatcher), receipts and typing; pager delivery lives in
bot.im.delivery, the sessions in bot.im.sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from bot.config import Config
from bot.im import outgoing
from bot.im.content import ImContent
from bot.im.delivery import Pager, PagerDelivery
from bot.im.incoming import read_request
from bot.im.loops import LoopGuard
from bot.im.outgoing import Payload
from bot.im.receipts import ReceiptBook
from bot.im.sessions import ImSession, ImSessions
from bot.sender import Sender
from bot.services.identity import Identified, IdentityGate, Refused
from bot.services.registrar import Registrar
from bot.sip.headers import Address
from bot.sip.message import Request, Response, make_response
from bot.sip.uri import SipUri
from bot.transport.endpoint import ServerRequest, SipEndpoint

log = structlog.get_logger("bot.im")
Answer = Callable[[Sender, str, str], Awaitable[str]]
"""(sender, text, call_id) -> reply: the command dispatcher."""
RECEIPT_WAIT = 60.0
"""Seconds after which a receipt we asked for is logged as missing (never asked again)."""
Work = Callable[[ServerRequest, Sender, float], "Response | None"]
"""(request, its sender, the loop's time) -> the response, or None when answered already."""


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
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        bot = config.sip
        self.identity = Address(
            uri=SipUri(user=bot.user, host=bot.domain), display_name=bot.display_name
        )
        self._bot_uri = str(self.identity.uri)
        """The bot's URI as CPIM bodies name it (formatted once: the identity is fixed)."""
        self.loops = LoopGuard(config.im, Sender(bot.user, bot.domain))
        self.receipts = ReceiptBook()
        self.sessions = ImSessions(endpoint, config, self.identity, self._received, self._spawn)
        self.delivery = PagerDelivery(endpoint, config, registrar, self.identity)

    def reconfigure(self, config: Config) -> None:
        """New IM settings (a config reload)."""
        self.config = config
        self.sessions.config = config
        self.delivery.config = config
        self.loops.settings = config.im

    def start(self) -> None:
        self._sweeper = asyncio.ensure_future(self._sweep_idle())

    async def drain(self) -> None:
        """Wait for the work under way - commands and their replies, receipts - to finish,
        including work that requests of open sessions add meanwhile (the bot stopping)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        await self.sessions.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in self._tasks:
            task.cancel()
        # a command's task cancelled before its first step never reaches the finally where
        # it forgets itself (:meth:`_reply`): forgotten here, as the others will be anyway
        self._tasks.clear()

    # --- incoming ----------------------------------------------------------------------------

    def end_sessions_of(self, users: set[str]) -> None:
        """End (BYE) the sessions of these users of our domain: removed, or their password
        changed, by a reload - the identity the session was opened with no longer holds."""
        self.sessions.end_sessions_of(users)

    def out_of_dialog(self, incoming: ServerRequest) -> Response | None:
        """A request without a To tag the router gives us: MESSAGE or INVITE (the requests
        inside a session come to :meth:`in_dialog`). Who sent each is decided by the identity
        gate (bot.services.identity), nowhere else."""
        request = incoming.request
        work: Work
        if request.method == "MESSAGE":
            work = self._pager
        elif request.method == "INVITE":
            work = self.sessions.invite
        else:
            return make_response(request, 405)
        now = self._loop.time()
        return self._admitted(incoming, self.gate.identify(incoming, now), work, now)

    def _admitted(
        self, incoming: ServerRequest, who: Identified | Refused, work: Work, now: float
    ) -> Response | None:
        """Run ``work`` for the identified sender (at ``now``, the loop's time) - after the
        hold the gate asks for (the per-user pace) - or send the gate's refusal."""
        if isinstance(who, Refused):
            who.send(incoming)
            return None
        if who.hold <= 0:
            return who.answered(work(incoming, who.sender, now))

        def later() -> None:
            response = who.answered(work(incoming, who.sender, self._loop.time()))
            if response is not None:
                incoming.respond(response)

        self._loop.call_later(who.hold, later)
        return None

    def in_dialog(self, incoming: ServerRequest) -> Response | None:
        """A request with a To tag the router gives us: inside an IM session, or 481."""
        request = incoming.request
        session = self.sessions.session_of(request)
        if session is None:
            return make_response(request, 481)  # RFC 3261 §12.2.2
        # the dialog's identity holds only on its own flow (bot.services.identity); checked
        # before the dialog sees the request, so a stranger cannot move its CSeq either
        now = self._loop.time()
        who = self.gate.in_dialog(incoming, session.identity, session.peer, now)
        if who is session.identity:  # the usual case: no hold, no Authentication-Info
            return self.sessions.in_session(incoming, session, now)
        return self._admitted(
            incoming, who, lambda inc, _, at: self.sessions.in_session(inc, session, at), now
        )

    def on_ack(self, ack: Request) -> None:
        session = self.sessions.session_of(ack)
        if session is not None:
            session.acked.set()

    def _pager(self, incoming: ServerRequest, sender: Sender, now: float) -> Response | None:
        request = incoming.request
        content = read_request(request)
        if isinstance(content, Response):
            return content
        # RFC 3428 §7: the 200 goes out first (returned: sent before the reply's task runs,
        # with the identity gate's Authentication-Info); the reply is a new MESSAGE of its own
        pager = Pager(sender, request, incoming.peer)
        self._received(content, sender, request, pager, now)
        return make_response(request, 200)

    def _received(
        self,
        content: ImContent,
        sender: Sender,
        request: Request,
        to: Pager | ImSession,
        now: float,
    ) -> None:
        """A message is in and accepted (at ``now``, the loop's time): record a receipt, or
        answer a person's text - never anything an automaton sent (bot.im.loops)."""
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
        if self.loops.may_reply(sender, now):
            self._spawn(self._reply(to, sender, content, request.call_id), guarded=True)

    async def _reply(
        self, to: Pager | ImSession, sender: Sender, content: ImContent, call_id: str
    ) -> None:
        """The task of one command (a slow one blocks none): the answer, sent the way the user
        wrote. A session outlives a long command of its own (announce): not idle while it
        runs, quiet from its end on. The task logs its own failure, as :meth:`_done` would,
        and forgets itself as it ends (``guarded``, :meth:`_spawn`)."""
        session = to if isinstance(to, ImSession) else None
        if session is not None:
            session.running += 1
        try:
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
                bot=self._bot_uri,
                user=sender,
                ask_receipt=self.config.im.receipts.request,
            )
            if payload.message_id is not None:  # before sending: the receipt may beat the 200
                self.receipts.expect(payload.message_id, sender.address, self._loop.time())
            await self._send(to, payload, "reply")
            if shown:
                idle = typing_payload(to, "idle")
                if idle is not None:
                    await self._send(to, idle, "typing")
        except Exception as exc:
            log.error("im.task.failed", error=repr(exc))
        finally:
            self._tasks.discard(asyncio.current_task(self._loop))
            if session is not None:
                session.running -= 1
                session.last_activity = self._loop.time()

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
                    kind, status, content.message_id, bot=self._bot_uri, user=sender.uri
                )
                await self._send(to, payload, f"receipt.{kind}")

    def _send(self, to: Pager | ImSession, payload: Payload, what: str) -> Awaitable[None]:
        """Send ``payload`` to the user the way they wrote: a new MESSAGE to their contacts
        (pager), or a request inside their IM session; the outcome is logged. (The sending
        itself is awaited: no coroutine of its own in between.)"""
        if isinstance(to, ImSession):
            return self.sessions.send(to, payload, what)
        return self.delivery.deliver(to, payload, what)

    async def _sweep_idle(self) -> None:
        timeout = self.config.im.session_idle_timeout
        while True:
            await asyncio.sleep(min(timeout / 2, 5.0))
            now = self._loop.time()
            self.sessions.end_idle(now, timeout)
            self.receipts.sweep(now, RECEIPT_WAIT)

    def _spawn(self, work: Coroutine[Any, Any, None], *, guarded: bool = False) -> None:
        """``work`` in a task of its own; ``guarded``: it logs its own failure and forgets its
        own task as it ends (in a ``finally``, as :meth:`_reply` does), so its end costs
        nothing more - no done callback, which the loop would run as one more callback of its
        own for every command."""
        task = self._loop.create_task(work)
        self._tasks.add(task)
        if not guarded:
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("im.task.failed", error=repr(task.exception()))

    @property
    def session_count(self) -> int:
        return len(self.sessions)
