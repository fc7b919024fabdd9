"""One INVITE dialog the bot originates (RFC 3261 §13, §14, §15): the INVITE and its 1xx, the
2xx and its ACK (§13.2.2.4), digest challenges (§22.2), CANCEL when nobody answers (§9.1), BYE
either way, re-INVITE and UPDATE from the peer answered (RFC 3311, RFC 3264 §8), and session
timers (RFC 4028). The body and its type are the caller's: SDP for audio, C3P for a focus."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog

from bot.calls.router import DialogRouter
from bot.sender import Sender
from bot.sip.dialog import Dialog
from bot.sip.digest import DigestClient
from bot.sip.errors import SipParseError
from bot.sip.grammar import digits_value
from bot.sip.message import Request, Response, make_response
from bot.sip.transaction import Peer
from bot.transport.endpoint import ServerRequest, SipEndpoint
from bot.transport.resolver import Target

log = structlog.get_logger("bot.calls")
MIN_SE = 90
"""RFC 4028 §4: the smallest Session-Expires anyone may ask for, in seconds."""
MAX_SE = 86_400
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO"
Answerer = Callable[[bytes, str], tuple[bytes, str]]
"""A new offer from the peer (body, Content-Type) -> our answer (body, Content-Type); raises
SipParseError (status 488) when it cannot be taken (RFC 3264 §8)."""


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """A ``Session-Expires`` value (RFC 4028 §4): the interval and who refreshes."""

    interval: int
    refresher: str | None = None
    """``uac`` or ``uas``: the client or the server of the transaction that carried it."""

    @classmethod
    def parse(cls, value: str | None) -> SessionTimer | None:
        if value is None:
            return None
        delta, *params = (part.strip() for part in value.split(";"))
        interval = digits_value(delta, MAX_SE)
        if not interval:
            return None
        refresher = next(
            (p.partition("=")[2].strip().lower() for p in params
             if p.partition("=")[0].strip().lower() == "refresher"),
            None,
        )  # fmt: skip
        return cls(interval, refresher if refresher in ("uac", "uas") else None)


class InviteSession:
    """A UAC INVITE dialog: :meth:`establish`, then requests from the peer go to
    :meth:`on_request` (through the router) until :attr:`ended`."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        router: DialogRouter,
        request: Request,
        *,
        destination: Peer | None = None,
        credentials: DigestClient | None = None,
        answer_timeout: float = 30.0,
        session_expires: int | None = None,
        remote: Sender | None = None,
    ):
        """``request``: the INVITE, complete but for Via and the session-timer headers."""
        self.endpoint = endpoint
        self.router = router
        self.request = request
        self.destination = destination
        self.credentials = credentials
        self.answer_timeout = answer_timeout
        self.remote = remote
        self.target = str(request.to.uri)
        """Who is called (the To URI), for log lines and sentences."""
        self.contact = request.headers.get("contact")
        self.content_type = request.headers.get("content-type") or ""
        self.local_body = request.body
        """What we last offered or answered (re-sent in refreshes, RFC 4028 §7.4)."""
        self.dialog: Dialog | None = None
        self.response: Response | None = None
        """The final response to the INVITE, once it came."""
        self.provisional: list[int] = []
        self.on_offer: Answerer | None = None
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.timed_out = False
        self.cancelled = False
        self._flows: frozenset[Peer] = frozenset()
        self._interval: int | None = None
        """The session interval agreed (RFC 4028), None without session timers."""
        self._we_refresh = False
        self._timer_handle: asyncio.TimerHandle | None = None
        self._peer_allows: set[str] = set()
        self._refreshing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()
        if session_expires is not None:
            # RFC 4028 §7.1: we support timers and offer to refresh ourselves
            request.headers.add("Supported", "timer")
            request.headers.add("Session-Expires", f"{session_expires};refresher=uac")
            request.headers.add("Min-SE", str(MIN_SE))
        if "allow" not in request.headers:
            request.headers.add("Allow", ALLOW)

    @property
    def call_id(self) -> str:
        return self.request.call_id

    # --- the INVITE ------------------------------------------------------------------------

    async def establish(self) -> Response:
        """Send the INVITE and return its final response. A 2xx is ACKed and the dialog kept;
        a 422 is tried once more with the Min-SE asked (RFC 4028 §7.1); a 401/407 answered with
        ``credentials``; no final response within ``answer_timeout``: CANCEL (a 487 follows).
        A 2xx that crosses our CANCEL is ACKed and ended with BYE (RFC 3261 §9.1, §15)."""
        self._flows = await self._flows_of(self.request)
        timer = self._loop.call_later(self.answer_timeout, self._time_out)
        try:
            response = await self._transact()
        finally:
            timer.cancel()
        self.response = response
        if not 200 <= response.status < 300:
            self._end(f"the INVITE got {response.status} {response.reason}.")
            return response
        await self._confirm(response)
        if self.dialog is not None and (self.timed_out or self.cancelled):
            await self.bye("the call was answered after the bot gave up.")
        return response

    def cancel(self) -> None:
        """Give up a call not answered yet: CANCEL (RFC 3261 §9.1); a 2xx that still comes is
        ended with BYE by :meth:`establish`."""
        self.cancelled = True
        self.endpoint.client.cancel(self.request)

    async def _transact(self) -> Response:
        asked_longer = False
        while True:
            response = await self.endpoint.request(
                self.request, destination=self.destination, on_provisional=self._provisional
            )
            retry: Request | None = None
            giving_up = self.timed_out or self.cancelled
            if response.status in (401, 407) and self.credentials is not None and not giving_up:
                retry = self.credentials.retry(self.request, response)
            elif response.status == 422 and not asked_longer and not giving_up:
                retry, asked_longer = self._longer(response), True
            if retry is None:
                return response
            self.request = retry  # the same Call-ID and From tag, CSeq + 1 (RFC 3261 §8.1.3.5)

    def _longer(self, response: Response) -> Request | None:
        """RFC 4028 §7.1: after 422, the INVITE again with Session-Expires and Min-SE at least
        the Min-SE the 422 names."""
        asked = _min_se(response)
        if asked is None:
            return None
        retry = self.request.copy()
        retry.headers.set("CSeq", f"{self.request.cseq.seq + 1} INVITE")
        retry.headers.set("Session-Expires", f"{asked};refresher=uac")
        retry.headers.set("Min-SE", str(asked))
        return retry

    def _provisional(self, response: Response) -> None:
        self.provisional.append(response.status)
        log.info("calls.progressed", call_id=self.call_id, status=response.status)

    def _time_out(self) -> None:
        self.timed_out = True
        self.endpoint.client.cancel(self.request)

    async def _flows_of(self, request: Request) -> frozenset[Peer]:
        """Where the request goes (RFC 3263): the peers the dialog's requests are believed
        from (bot.services.identity)."""
        if self.destination is not None:
            return frozenset({self.destination})
        targets: list[Target] = await self.endpoint.client.targets(request)
        return frozenset(t.peer for t in targets)

    async def _confirm(self, response: Response) -> None:
        try:
            dialog = Dialog.as_uac(self.request, response)
        except SipParseError:
            self._end("the 2xx had no To tag: no dialog to follow (RFC 3261 §12.1.2).")
            return
        self.dialog = dialog
        self._peer_allows = {m.upper() for m in _tokens(response.headers.values("allow"))}
        self.router.add(dialog.id, self.on_request, flows=self._flows, remote=self.remote)
        await self._ack(self.request.cseq.seq)
        offered = SessionTimer.parse(self.request.headers.get("session-expires"))
        agreed = SessionTimer.parse(response.headers.get("session-expires"))
        if offered is not None and agreed is not None:
            # RFC 4028 §7.2: the 2xx says who refreshes (uac - we - when it does not say)
            self._arm(agreed.interval, we_refresh=agreed.refresher != "uas")
        log.info("calls.answered", call_id=self.call_id, target=self.target,
                 session_interval=self._interval, we_refresh=self._we_refresh)  # fmt: skip

    async def _ack(self, cseq: int) -> None:
        """The ACK of a 2xx (RFC 3261 §13.2.2.4): to the remote target (or the route set)."""
        assert self.dialog is not None
        ack = self.dialog.create_ack(cseq)
        peer = self.destination
        if peer is None:
            targets = await self.endpoint.client.targets(ack)
            peer = targets[0].peer if targets else None
        if peer is None:
            log.warning("calls.ack_not_sent", call_id=self.call_id)
            return
        self.endpoint.client.send_ack(ack, peer)

    # --- requests from the peer ------------------------------------------------------------

    def on_request(self, incoming: ServerRequest) -> Response | None:
        """A request inside the dialog (the router has let it through)."""
        request = incoming.request
        if self.dialog is None or self.ended.is_set():
            return make_response(request, 481)  # RFC 3261 §12.2.2
        error = self.dialog.receive_request(request)
        if error is not None:
            return error
        method = request.method
        if method == "BYE":  # RFC 3261 §15.1.2
            self._end(f"{self.target} hung up.")
            return make_response(request, 200)
        if method in ("INVITE", "UPDATE"):
            return self._answer(request)
        if method in ("INFO", "OPTIONS"):
            return make_response(request, 200)
        response = make_response(request, 405)
        response.headers.add("Allow", ALLOW)
        return response

    def _answer(self, request: Request) -> Response:
        """A re-INVITE or UPDATE: a new offer answered (RFC 3264 §8, RFC 3311 §5.2), or a
        session refresh (RFC 4028 §9); 491 while our own is pending (RFC 3261 §14.2)."""
        if self._refreshing:
            response = make_response(request, 491)
            response.headers.add("Retry-After", "2")
            return response
        body, content_type = b"", ""
        if request.body:
            try:
                if self.on_offer is None:
                    raise SipParseError("no new offers in this call", status=488)
                body, content_type = self.on_offer(
                    request.body, request.headers.get("content-type") or ""
                )
            except SipParseError as exc:
                response = make_response(request, 488, "Not Acceptable Here")
                response.headers.add("Warning", f'399 sipbot "{exc.reason[:100]}"')
                return response
            self.local_body, self.content_type = body, content_type
        elif request.method == "INVITE":  # an offerless re-INVITE: our offer goes in the 2xx
            body, content_type = self.local_body, self.content_type
        response = make_response(request, 200)
        if self.contact:
            response.headers.add("Contact", self.contact)
        response.headers.add("Allow", ALLOW)
        asked = SessionTimer.parse(request.headers.get("session-expires"))
        if asked is not None:
            # RFC 4028 §9: the 2xx names the refresher - the peer's choice, else the peer when
            # it supports timers, else us - with Require: timer when it does
            supported = "timer" in _tokens(request.headers.values("supported"))
            refresher = asked.refresher or ("uac" if supported else "uas")
            response.headers.add("Session-Expires", f"{asked.interval};refresher={refresher}")
            if supported:
                response.headers.add("Require", "timer")
            self._arm(asked.interval, we_refresh=refresher == "uas")
        elif self._interval is not None:  # any refresh restarts the timer (§10)
            self._arm(self._interval, we_refresh=self._we_refresh)
        if body:
            response.headers.add("Content-Type", content_type)
            response.body = body
        return response

    # --- session timers (RFC 4028) ---------------------------------------------------------

    def _arm(self, interval: int, *, we_refresh: bool) -> None:
        """(Re)start the session timer (RFC 4028 §10): our refresh at half the interval, or -
        the peer refreshing - a BYE before expiry by min(32 s, a third of the interval)."""
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        self._interval, self._we_refresh = interval, we_refresh
        if we_refresh:
            self._timer_handle = self._loop.call_later(interval / 2, self._spawn_refresh)
        else:
            wait = interval - min(32.0, interval / 3)
            self._timer_handle = self._loop.call_later(wait, self._expired)

    def _spawn_refresh(self) -> None:
        self._spawn(self._refresh())

    def _expired(self) -> None:
        self._spawn(self.bye(f"the session expired: {self.target} did not refresh it (RFC 4028)."))

    async def _refresh(self, method: str | None = None) -> None:
        """Our refresh (RFC 4028 §7.4): UPDATE without a body when the peer allows it, else a
        re-INVITE with the same description; 408 or 481 end the call (RFC 5057 §5.1)."""
        if self.dialog is None or self._interval is None or self.ended.is_set():
            return
        method = method or ("UPDATE" if "UPDATE" in self._peer_allows else "INVITE")
        invite = method == "INVITE"
        request = self.dialog.create_request(
            method,
            contact=None,
            body=self.local_body if invite else b"",
            content_type=self.content_type if invite and self.local_body else None,
        )
        if self.contact:
            request.headers.add("Contact", self.contact)
        request.headers.add("Supported", "timer")
        request.headers.add("Session-Expires", f"{self._interval};refresher=uac")
        self._refreshing = True
        try:
            response = await self.endpoint.request(
                request, destination=self.destination, credentials=self.credentials
            )
        finally:
            self._refreshing = False
        if self.ended.is_set():
            return
        self.dialog.receive_response(request, response)
        status = response.status
        log.info("calls.refreshed", call_id=self.call_id, method=method, status=status)
        if 200 <= status < 300:
            if invite:
                await self._ack(request.cseq.seq)
            agreed = SessionTimer.parse(response.headers.get("session-expires"))
            if agreed is None:
                self._arm(self._interval, we_refresh=True)
            else:
                self._arm(agreed.interval, we_refresh=agreed.refresher != "uas")
        elif status in (408, 481):
            await self.bye(f"{self.target} lost the call (a refresh got {status}).")
        elif status == 422 and (longer := _min_se(response)) and longer > self._interval:
            self._interval = longer  # RFC 4028 §7.4 with §7.1's retry: the Min-SE it asks
            await self._refresh(method)
        elif status in (405, 501) and not invite:
            await self._refresh("INVITE")  # UPDATE refused after all: a re-INVITE then
        else:  # 491 and the like: RFC 3261 §14.1, again after a while, the timer still ours
            delay = random.uniform(2.1, 4.0)  # noqa: S311 - a back-off, not a secret
            self._timer_handle = self._loop.call_later(delay, self._spawn_refresh)

    # --- the end -----------------------------------------------------------------------------

    async def bye(self, reason: str = "the bot hung up.") -> None:
        """End the call: BYE when established (RFC 3261 §15.1.1), CANCEL while not."""
        if self.ended.is_set():
            return
        if self.dialog is None:
            self.cancel()
            return
        self._end(reason)
        bye = self.dialog.create_request("BYE")
        response = await self.endpoint.request(
            bye, destination=self.destination, credentials=self.credentials
        )
        log.info("calls.bye_answered", call_id=self.call_id, status=response.status)

    def _end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        if self.dialog is not None:
            self.router.remove(self.dialog.id)
        self.ended.set()
        log.info("calls.ended", call_id=self.call_id, target=self.target, reason=reason)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("calls.task_failed", call_id=self.call_id, error=repr(task.exception()))


def _tokens(values: list[str]) -> set[str]:
    """The comma-separated tokens of header rows (Allow, Supported: RFC 3261 §20)."""
    return {
        token.strip().lower() for value in values for token in value.split(",") if token.strip()
    }


def _min_se(response: Response) -> int | None:
    """The Min-SE of a 422 (RFC 4028 §5): delta-seconds, maybe with parameters."""
    return digits_value((response.headers.get("min-se") or "").split(";")[0].strip(), MAX_SE)
