"""A subscription to a conference's state: the conference event package (RFC 4575) over SIP
events (RFC 6665), as a standards focus (RFC 4579 §5.1) and a Lync focus (MS-CONFBAS §3.2;
pidgin-sipe sipe-subscriptions.c) speak it.

- SUBSCRIBE ``Event: conference`` with ``Accept: application/conference-info+xml``
  (RFC 4575 §3.1, §3.3); for Lync the headers pidgin-sipe sends (LYNC.md §2.2): the first
  state may come in the 2xx body (``ms-piggyback-first-notify``) and updates as BENOTIFY,
  which is never answered (``ms-benotify``);
- NOTIFY → 200 (RFC 6665 §4.1.3), also one that beats the SUBSCRIBE's 2xx (§4.1.2.4: it
  creates the dialog); a ``Subscription-State: terminated`` one ends the subscription;
- refreshed before it expires (§4.1.2.1), and at once when the roster reports a version gap
  (RFC 4575 §3.7: the refresh brings a full state);
- :meth:`ConferenceSubscription.close` unsubscribes with ``Expires: 0`` (§4.1.2.3).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog

from bot.conferencing.roster import CONTENT_TYPE, Roster, RosterChange, RosterError
from bot.errors import Refusal
from bot.sender import Sender
from bot.sip.dialog import Dialog, DialogId
from bot.sip.digest import DigestClient
from bot.sip.grammar import is_digits
from bot.sip.headers import Address
from bot.sip.message import Request, Response, make_response, new_request
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri, parse_uri
from bot.transport.endpoint import ServerRequest, SipEndpoint

log = structlog.get_logger("bot.calls.subscription")
DEFAULT_EXPIRES = 3600
"""Asked for when the caller names no duration: the package's default (RFC 4575 §3.3)."""
MIN_REFRESH = 5.0
"""Never refresh sooner than this after the last refresh, in seconds: a focus granting 1 s
must not make us spin."""
MAX_RESYNCS = 3
UNSUBSCRIBE_LINGER = 32.0
"""Seconds the dialog still takes the NOTIFY that follows an unsubscribe (RFC 6665 §4.1.2.3:
it "will be followed by a NOTIFY"; 64 × T1, the life of its transaction)."""
"""Re-subscriptions for gaps in a row before we stop trusting the focus."""
LYNC_HEADERS = (
    ("Supported", "com.microsoft.autoextend"),
    ("Supported", "ms-benotify"),
    ("Proxy-Require", "ms-benotify"),
    ("Supported", "ms-piggyback-first-notify"),
)
"""pidgin-sipe's SUBSCRIBE to a focus (sipe-conf.c ``sipe_subscribe_conference``)."""

DialogHandler = Callable[[ServerRequest], "Response | None"]
OnChange = Callable[[RosterChange, Roster], None]


class Router(Protocol):
    """What a subscription needs of bot.calls.router.DialogRouter."""

    def add(
        self,
        dialog_id: DialogId,
        handler: DialogHandler,
        *,
        flows: frozenset[Peer] = ...,
        remote: Sender | None = ...,
    ) -> None: ...

    def add_pending(
        self,
        call_id: str,
        local_tag: str,
        handler: DialogHandler,
        *,
        flows: frozenset[Peer] = ...,
        remote: Sender | None = ...,
    ) -> None: ...

    def remove(
        self, dialog_id: DialogId | None = None, *, pending: tuple[str, str] | None = None
    ) -> None: ...


class SubscriptionFailed(Refusal):
    """The focus would not let us subscribe (the message says why, for a person)."""


class ConferenceSubscription:
    def __init__(
        self,
        endpoint: SipEndpoint,
        router: Router,
        uri: str,
        *,
        local: str,
        contact: Address,
        lync: bool = False,
        on_change: OnChange | None = None,
        expires: int = DEFAULT_EXPIRES,
        min_refresh: float = MIN_REFRESH,
        linger: float = UNSUBSCRIBE_LINGER,
        destination: Peer | None = None,
        credentials: DigestClient | None = None,
        epid: str | None = None,
    ):
        self.endpoint = endpoint
        self.router = router
        self.uri = uri
        self.local = local
        """Our address of record (From)."""
        self.contact = contact
        self.lync = lync
        self.on_change = on_change
        self.expires = expires
        self.min_refresh = min_refresh
        self.linger = linger
        self.destination = destination
        self.credentials = credentials
        self.epid = epid
        """The bot's endpoint id on From (Lync, LYNC.md §2.6); the dialog keeps it."""
        self.roster = Roster()
        self.dialog: Dialog | None = None
        self.active = False
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._subscribe: Request | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._flows: frozenset[Peer] = frozenset()
        target = parse_uri(uri)
        self._remote: Sender | None = None
        """Who the dialog's requests are from, believed only on ``_flows`` (the identity
        gate's dialog-flow decision, bot.services.identity, as for calls)."""
        if isinstance(target, SipUri):
            self._remote = Sender(target.user or "", target.host)
        self._resyncs = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe; :class:`SubscriptionFailed` when the focus refuses or does not answer."""
        headers = [("Event", "conference"), ("Accept", CONTENT_TYPE)]
        if self.lync:
            headers += LYNC_HEADERS  # pidgin-sipe sends no Expires: the focus chooses
        else:
            headers.append(("Expires", str(self.expires)))
        request = new_request(
            "SUBSCRIBE",
            parse_uri(self.uri),
            from_=f"<{self.local}>" + (f";epid={self.epid}" if self.epid else ""),
            to=f"<{self.uri}>",
            contact=self.contact,
            headers=headers,
        )
        self._subscribe = request
        self._flows = await self._flows_of(request)
        pending = (request.call_id, request.from_.tag or "")
        self.router.add_pending(*pending, self.handle, flows=self._flows, remote=self._remote)
        try:
            response = await self.endpoint.request(
                request, destination=self.destination, credentials=self.credentials
            )
        finally:
            self.router.remove(pending=pending)
        if not 200 <= response.status < 300:
            if self.dialog is not None:  # a NOTIFY made a dialog the failure ends
                self.router.remove(self.dialog.id)
            log.info("subscription.refused", uri=self.uri, status=response.status)
            raise SubscriptionFailed(_refused(self.uri, response))
        if self.dialog is None:
            self.dialog = Dialog.as_uac(request, response)
            self._register()
        else:
            self.dialog.receive_response(request, response)
        self.active = True
        log.info("subscription.started", uri=self.uri, call_id=request.call_id)
        if response.body and response.content_type == CONTENT_TYPE:
            self._absorb(response.body)  # ms-piggyback-first-notify
        self._schedule(response)

    async def _flows_of(self, request: Request) -> frozenset[Peer]:
        """Where the SUBSCRIBE goes (RFC 3263, or the outbound proxy): where its NOTIFYs are
        believed from."""
        if self.destination is not None:
            return frozenset({self.destination})
        return frozenset(t.peer for t in await self.endpoint.client.targets(request))

    def _register(self) -> None:
        assert self.dialog is not None
        self.router.add(self.dialog.id, self.handle, flows=self._flows, remote=self._remote)

    async def close(self) -> None:
        """Unsubscribe (``Expires: 0``, RFC 6665 §4.1.2.3); idempotent, never raises."""
        self._cancel_refresh()
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refreshing
        if self.dialog is None or not self.active:
            self._end("closed")
            return
        self.active = False
        response: Response | None = None
        with contextlib.suppress(Exception):
            response = await self._send_subscribe(0)
        unsubscribed = response is not None and 200 <= response.status < 300
        self._end("closed", linger=self.linger if unsubscribed else 0.0)

    def _end(self, reason: str, *, linger: float = 0.0) -> None:
        """Over; the dialog is forgotten now, or after ``linger`` seconds (or its terminated
        NOTIFY) when an unsubscribe was accepted."""
        self.active = False
        self._cancel_refresh()
        if linger > 0 and self.dialog is not None and self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(linger, self._forget)
        else:
            self._forget()
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()
            log.info("subscription.ended", uri=self.uri, reason=reason)

    def _forget(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self.dialog is not None:
            self.router.remove(self.dialog.id)

    # --- in-dialog requests -------------------------------------------------------------------

    def handle(self, incoming: ServerRequest) -> Response | None:
        """NOTIFY → 200, BENOTIFY → no answer at all (ms-benotify); anything else 405."""
        request = incoming.request
        if request.method not in ("NOTIFY", "BENOTIFY"):
            response = make_response(request, 405)
            response.headers.add("Allow", "NOTIFY, BENOTIFY")
            return response
        event = (request.headers.get("event") or "").split(";")[0].strip().lower()
        if event != "conference":
            return make_response(request, 489)  # RFC 6665 §4.1.3: Bad Event
        if self.dialog is None:
            if self._subscribe is None:
                return make_response(request, 481)
            # RFC 6665 §4.1.2.4: the NOTIFY beat the 2xx; it creates the dialog
            try:
                self.dialog = Dialog.from_notify(self._subscribe, request)
            except ValueError:
                return make_response(request, 400)
            self._register()
        else:
            refused = self.dialog.receive_request(request)
            if refused is not None:
                return refused
        state = (request.headers.get("subscription-state") or "").split(";")[0].strip().lower()
        if request.body:
            if request.content_type != CONTENT_TYPE:
                return _answer(request, make_response(request, 415))
            self._absorb(request.body)
        if state == "terminated":
            self._end("terminated by the focus")
            self._forget()
        return _answer(request, make_response(request, 200))

    # --- the roster ---------------------------------------------------------------------------

    def _absorb(self, body: bytes) -> None:
        try:
            change = self.roster.apply(body)
        except RosterError as exc:
            log.warning("subscription.body_refused", uri=self.uri, error=str(exc))
            return
        if change.resync:
            self._resync()
            return
        if change.stale:
            return
        self._resyncs = 0
        if change.joined or change.left:
            log.info(
                "subscription.roster_changed",
                uri=self.uri,
                version=change.version,
                joined=len(change.joined),
                left=len(change.left),
            )
        if self.on_change is not None:
            try:
                self.on_change(change, self.roster)
            except Exception:
                log.exception("subscription.on_change_failed", uri=self.uri)

    def _resync(self) -> None:
        """A lost notification: refresh now for a full state (RFC 4575 §3.7)."""
        self._resyncs += 1
        if self._resyncs > MAX_RESYNCS:
            log.warning("subscription.resync_gave_up", uri=self.uri)
            return
        log.info("subscription.resync", uri=self.uri, version=self.roster.version)
        self._start_refresh()

    # --- refresh ------------------------------------------------------------------------------

    def _schedule(self, response: Response) -> None:
        """Refresh before the granted duration runs out (RFC 6665 §4.1.2.1)."""
        granted = _expires(response, self.expires)
        if granted <= 0:
            self._end("expired")
            return
        delay = max(self.min_refresh, granted - min(granted / 2, 60.0))
        self._cancel_refresh()
        self._refresh = asyncio.get_running_loop().call_later(delay, self._start_refresh)

    def _start_refresh(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh_now())

    async def _refresh_now(self) -> None:
        response = await self._send_subscribe(self.expires)
        if response is None:
            return
        if 200 <= response.status < 300:
            if response.body and response.content_type == CONTENT_TYPE:
                self._absorb(response.body)
            self._schedule(response)
        else:
            log.info("subscription.refresh_refused", uri=self.uri, status=response.status)
            self._end(f"refresh refused ({response.status})")

    async def _send_subscribe(self, expires: int) -> Response | None:
        if self.dialog is None:
            return None
        request = self.dialog.create_request("SUBSCRIBE", contact=self.contact)
        request.headers.add("Event", "conference")
        request.headers.add("Accept", CONTENT_TYPE)
        request.headers.add("Expires", str(expires))
        if self.lync:
            _add(request, LYNC_HEADERS)
        response = await self.endpoint.request(
            request, destination=self.destination, credentials=self.credentials
        )
        if 200 <= response.status < 300 and self.dialog is not None:
            self.dialog.receive_response(request, response)
        return response

    def _cancel_refresh(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None


def _add(request: Request, headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        request.headers.add(name, value)


def _answer(request: Request, response: Response) -> Response | None:
    """BENOTIFY is never answered (ms-benotify: "best effort NOTIFY")."""
    return None if request.method == "BENOTIFY" else response


def _expires(response: Response, asked: int) -> int:
    text = (response.headers.get("expires") or "").strip()
    return min(int(text), 2**31) if is_digits(text) else asked


def _refused(uri: str, response: Response) -> str:
    diagnostics = response.headers.get("ms-diagnostics") or ""
    said = diagnostics.partition('reason="')[2].partition('"')[0]
    detail = said or f"{response.status} {response.reason or ''}".strip()
    return f"The conference {uri} would not send me its roster ({detail})."
