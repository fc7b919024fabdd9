"""The SIP endpoint: the sans-IO transaction layer wired to sockets and one timer (the
counterpart of aioquic's asyncio/protocol.py).

After any input (bytes, a timer, a transport failure) the endpoint runs its *pump*: hand the
events to their owners, flush what the core queued, re-arm the single ``call_at`` timer at
the core's next deadline (aioquic style). What to send and where - targets, failover, the
digest retry - is the client's (bot.transport.client): ``await endpoint.request(msg)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bot.sip.digest import DigestClient
from bot.sip.errors import SipParseError
from bot.sip.events import (
    AckReceived,
    CancelReceived,
    Event,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    TransportFailed,
)
from bot.sip.headers import Address, Via
from bot.sip.layer import TransactionLayer
from bot.sip.message import Request, Response, make_response, new_branch
from bot.sip.transaction import ClientTransaction, Peer, ServerTransaction, kept_request
from bot.sip.uri import SipUri
from bot.transport.client import Outcome, Provisional, SipClient
from bot.transport.errors import ListenError
from bot.transport.incoming import Handler, HandlerRunner, ServerRequest, consume_own_routes
from bot.transport.resolver import Resolver, Target
from bot.transport.settings import EndpointConfig, Listen
from bot.transport.sockets import StreamTransport, UdpTransport, refused
from bot.transport.tls import client_context, server_context

__all__ = ["EndpointConfig", "Handler", "Listen", "ServerRequest", "SipEndpoint"]

log = logging.getLogger(__name__)

TIMER_GRID = 1 / 128
"""Seconds (about 8 ms): the endpoint's one timer is armed for the layer's next deadline rounded
up to a multiple of this, and its wake-up expires every timer due by then in one pass. At
thousands of transactions a second, Timers J and K (RFC 3261 §17.1.2.2, §17.2.2) would each
be a wake-up of their own; the RFC's timers are minimums that tolerate a few milliseconds
late (Timers A, E and G keep their intervals: each is counted from its late expiry). A power
of two: the rounded deadlines are exact in binary floating point."""


class SipEndpoint:
    def __init__(
        self,
        config: EndpointConfig | None = None,
        *,
        handler: Handler | None = None,
        resolver: Resolver | None = None,
    ):
        self.config = config or EndpointConfig()
        self.layer = TransactionLayer(timers=self.config.timers, policy=self.config.policy)
        self.handler = handler
        self.on_ack: Callable[[Request], None] | None = None
        self.on_cancel: Callable[[Request], None] | None = None
        self.admit: Callable[[str, float], bool] | None = None
        """(source address, now) -> False to drop what it sent, unread and unanswered."""
        self.resolver = resolver or Resolver()
        self._udp: UdpTransport | None = None
        self._streams: dict[str, StreamTransport] = {}
        self._addresses: dict[str, tuple[str, int]] = {}
        self._via_text: dict[str, str] = {}
        """Our Via over each transport up to its parameters, as text (see via_text)."""
        self._waiting: dict[ClientTransaction, asyncio.Future[Outcome]] = {}
        self._provisional: dict[ClientTransaction, Callable[[Response], None]] = {}
        self._invites: dict[tuple[str, int], ClientTransaction] = {}
        self._server_names: dict[Peer, str] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False
        """A pump is running (see _pump)."""
        self._again = False
        """Something asked for a pump while the running one was sending."""
        self._expiring = False
        """The pump is expiring timers already due (see _arm_timer)."""
        self._deadline: float | None = None
        """The layer's next deadline when the timer was last considered: mostly unchanged
        from one pump to the next (the oldest Timer K or J)."""
        self._handlers = HandlerRunner()
        self.client = SipClient(self)
        """Sends the requests we originate (bot.transport.client)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._time: Callable[[], float] = time.monotonic
        """The loop's clock (see :func:`_clock`), set at start."""
        self._heads_seen = -1
        """The layer's ``heads_added`` when the timer was last considered (see _arm_timer)."""
        self._on_event: dict[type[Event], Callable[[Any], None]] = {
            RequestReceived: self._handle_request,
            ResponseReceived: self._handle_response,
            TransactionTimedOut: self._timed_out,
            TransportFailed: self._transport_failed,
            AckReceived: self._acked,
            CancelReceived: self._cancelled,
        }
        """What each kind of layer event does (see _pump)."""

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open every listener; raises :class:`ListenError` (after closing those already
        open) when one cannot be opened."""
        self._loop = asyncio.get_running_loop()
        self._time = _clock(self._loop)
        for spec in self.config.listen:
            try:
                address = await self._listen(spec)
            except OSError as exc:
                await self.close()
                raise ListenError(spec.transport, spec.host, spec.port, exc) from exc
            self._addresses[spec.transport] = (spec.advertise or address[0], address[1])
        log.info("sip.endpoint.started addresses=%s", self._addresses)

    async def _listen(self, spec: Listen) -> tuple[str, int]:
        if spec.transport == "UDP":
            self._udp = await UdpTransport.open(
                spec.host, spec.port, self._on_message, self._on_failure
            )
            return self._udp.local
        stream = self._stream_transport(spec.transport, listening=True)
        self._streams[spec.transport] = stream
        return await stream.listen(spec.host, spec.port)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._handlers.cancel()
        if self._udp is not None:
            self._udp.close()
        for stream in self._streams.values():
            await stream.close()
        for future in self._waiting.values():
            if not future.done():
                future.cancel()

    async def __aenter__(self) -> SipEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connection_count(self) -> int:
        """Open TCP and TLS connections, both directions (for /metrics)."""
        return sum(stream.connection_count for stream in self._streams.values())

    def listening(self) -> dict[str, bool]:
        """Each configured listener's transport: whether its socket is open (for /readyz)."""
        up: dict[str, bool] = {}
        for spec in self.config.listen:
            if spec.transport == "UDP":
                up["UDP"] = self._udp is not None and self._udp.is_open
            else:
                stream = self._streams.get(spec.transport)
                up[spec.transport] = stream is not None and stream.is_serving
        return up

    def address(self, transport: str = "UDP") -> tuple[str, int]:
        """Host and port we are reachable on over ``transport``."""
        return self._addresses[transport]

    def add_stream_transport(self, kind: str) -> None:
        """Allow outgoing TCP/TLS connections without listening (a pure client)."""
        if kind not in self._streams:
            self._streams[kind] = self._stream_transport(kind, listening=False)

    def _stream_transport(self, kind: str, *, listening: bool) -> StreamTransport:
        tls = self.config.tls if kind == "TLS" else None
        return StreamTransport(
            kind,
            self._on_message,
            self._on_failure,
            server_ssl=server_context(tls) if tls is not None and listening else None,
            client_ssl=client_context(tls) if tls is not None else None,
            keepalive_interval=self.config.keepalive_interval,
            limits=self.config.limits,
            max_message=self.layer.max_message_size,
            admit=self._admits,
        )

    def _admits(self, host: str) -> bool:
        """The datagram gate (``admit``) applied to connections at accept: a banned address
        cannot hold a connection either."""
        assert self._loop is not None
        return self.admit is None or self.admit(host, self._time())

    # --- building messages --------------------------------------------------------------------

    def via(self, transport: str = "UDP") -> Via:
        """A fresh top Via for a request we send over ``transport`` (RFC 3261 §8.1.1.7), asking
        for ``rport`` (RFC 3581)."""
        host, port = self._sent_by(transport)
        params = (("branch", new_branch()), ("rport", None))
        return Via(transport=transport, host=host, port=port, params=params)

    def via_text(self, transport: str, branch: str) -> str:
        """What :meth:`via` with ``branch`` reads as on the wire, written without building it
        (every request we send has one)."""
        sent_by = self._via_text.get(transport)
        if sent_by is None:
            host, port = self._sent_by(transport)
            sent_by = str(Via(transport=transport, host=host, port=port))
            self._via_text[transport] = sent_by
        return f"{sent_by};branch={branch};rport"

    def _sent_by(self, transport: str) -> tuple[str, int]:
        """The host (an IPv6 one in brackets) and port of our Via and Contact over
        ``transport`` (the first listener's when none is of that transport)."""
        host, port = self._addresses.get(transport) or next(iter(self._addresses.values()))
        return _uri_host(host), port

    def contact(self, user: str | None = None, transport: str = "UDP") -> Address:
        host, port = self._sent_by(transport)
        params = (("transport", transport.lower()),) if transport != "UDP" else ()
        scheme = "sips" if transport == "TLS" else "sip"
        return Address(uri=SipUri(scheme=scheme, user=user, host=host, port=port, params=params))

    # --- client side: the client decides, the endpoint runs the transactions ----------------

    @property
    def outbound_proxy(self) -> SipUri | None:
        return self.config.outbound_proxy

    def request(
        self,
        request: Request,
        *,
        destination: Peer | Target | None = None,
        credentials: DigestClient | None = None,
        on_provisional: Provisional | None = None,
    ) -> Coroutine[Any, Any, Response]:
        """Send ``request``; the coroutine of its final response: see
        :meth:`SipClient.request` (handed on as it is, not awaited in a coroutine of ours)."""
        return self.client.request(
            request, destination=destination, credentials=credentials, on_provisional=on_provisional
        )

    def name_server(self, peer: Peer, server_name: str) -> None:
        """The name a TLS connection to ``peer`` must present (RFC 5922 §4)."""
        self._server_names[peer] = server_name

    def transact(
        self,
        request: Request,
        peer: Peer,
        wire: bytes,
        branch: str,
        on_provisional: Provisional | None,
    ) -> asyncio.Future[Outcome]:
        """One client transaction for ``request`` (serialized as ``wire``, its top Via ours
        with ``branch``) to ``peer``: the future of its outcome. It is forgotten with its
        outcome (every client transaction ends in one: a final response, Timer B or F, a
        transport error), awaited or not."""
        assert self._loop is not None
        if peer.transport != "UDP":
            self.add_stream_transport(peer.transport)
        tx = self.layer.send_request(request, peer, self._time(), wire=wire, branch=branch)
        future: asyncio.Future[Outcome] = self._loop.create_future()
        self._waiting[tx] = future
        if on_provisional is not None:
            self._provisional[tx] = on_provisional
        self._pump()
        return future

    def acknowledge(self, ack: Request, peer: Peer) -> None:
        """Hand the layer the ACK (with its Via) for a 2xx to our INVITE (RFC 3261 §13.2.2.4):
        it re-sends it whenever that 2xx is retransmitted."""
        tx = self._invites.get((ack.call_id, ack.cseq.seq))
        self.layer.send_ack(ack, peer, tx)
        self._pump()

    def cancel_transaction(self, invite: Request) -> None:
        """CANCEL the pending client transaction of ``invite``, if any (RFC 3261 §9.1)."""
        assert self._loop is not None
        for tx in self._waiting:
            if tx.request is invite:
                self.layer.cancel(tx, self._time())
                self._pump()
                return

    # --- server side ---------------------------------------------------------------------------

    def respond(self, transaction: ServerTransaction, response: Response) -> None:
        assert self._loop is not None
        if self.config.user_agent and "server" not in response.headers:
            response.headers.add("Server", self.config.user_agent)
        self.layer.respond(transaction, response, self._time())
        self._pump()

    # --- the pump ------------------------------------------------------------------------------

    def _on_message(self, data: bytes, peer: Peer) -> None:
        now = self._time()
        if self.admit is not None and not self.admit(peer.host, now):
            return
        try:
            self.layer.receive(data, peer, now)
        except Exception:
            log.exception("sip.message.failed peer=%s size=%d", peer, len(data))
        finally:
            self._pump()

    def flush(self) -> None:
        """Send what the layer has queued (after a call into it from outside the pump)."""
        self._pump()

    def _on_failure(self, peer: Peer, reason: str) -> None:
        try:
            self.layer.transport_failed(peer, reason)
        except Exception:
            log.exception("sip.transport_failure.failed peer=%s reason=%s", peer, reason)
        finally:
            self._pump()

    def _on_timer(self) -> None:
        assert self._loop is not None
        armed_for = self._timer_at
        self._timer = None
        self._timer_at = None
        self._deadline = None
        # asyncio may run a call_at callback up to one clock resolution early: the timer was
        # armed for the layer's deadline rounded up to the grid, so every deadline up to that
        # has come and expires in this one pass (aioquic clamps the same way)
        now = self._time()
        if armed_for is not None:
            now = max(now, armed_for)
        self._expire(now)

    def _expire(self, now: float) -> None:
        """Fire the layer's timers due by ``now``, then pump what they produced."""
        try:
            self.layer.handle_timer(now)
        except Exception:
            log.exception("sip.timer.failed now=%.3f", now)
        finally:
            self._pump()

    def _pump(self) -> None:
        """Hand out the layer's events, send its datagrams, re-arm the timer. One event or send
        that fails is logged and skipped: the others still run and the timer is always armed.
        A call from within (a handler answering while its request is handed out) only queues:
        the running pump goes round until the layer has nothing left for it."""
        if self._pumping:
            self._again = True
            return
        self._pumping = True
        layer = self.layer
        events, on_event = layer.events, self._on_event
        try:
            while True:
                while events:
                    event = events.popleft()
                    try:
                        on_event[type(event)](event)
                    except Exception:
                        log.exception("sip.event.failed %s", _describe(event))
                self._again = False
                udp, out = self._udp, layer.outgoing
                if out:
                    layer.outgoing = []
                for data, peer in out:
                    try:
                        if udp is not None and peer.transport == "UDP":
                            udp.send(data, peer)
                        else:
                            self._send(data, peer)
                    except Exception:
                        log.exception("sip.send.failed peer=%s size=%d", peer, len(data))
                if not self._again:  # round again only for a send that failed: the layer
                    break  # has events about it
        finally:
            self._pumping = False
            # RFC 3261 §17: the wake-up moves only when the next deadline may be earlier than
            # the one it was armed for (a timer queue got a new first entry), or it has run
            if self._timer is None or layer.heads_added != self._heads_seen:
                self._arm_timer()

    def _arm_timer(self) -> None:
        """One ``call_at`` at the layer's next deadline, a future one on the :data:`TIMER_GRID`
        (aioquic's single timer, its wake-ups coalesced). A timer already armed earlier stays:
        a request answered at once cancels its Timer E, and moving the wake-up later and back
        for each would cost more than the one early wake-up, which re-arms for what is due.
        Only a new first entry of one of the layer's timer queues can make the next deadline
        earlier (each queue is in deadline order; firing and cancelling make it later): the
        pump calls this when one did, or when no wake-up is armed."""
        assert self._loop is not None
        layer = self.layer
        self._heads_seen = layer.heads_added
        deadline = layer.next_deadline()
        if deadline is None or deadline == self._deadline:
            return
        now = self._time()
        if deadline <= now and not self._expiring:
            # due already: a 0 over a reliable transport (RFC 3261 §17.1.2.2, §17.2.2: the
            # transaction ends at once), or one a busy loop is late for; expired here, without
            # a wake-up (once: what this expiry leaves due goes to the loop)
            self._expiring = True
            try:
                self._expire(now)
            finally:
                self._expiring = False
            return
        self._deadline = deadline
        if deadline > now:
            deadline = math.ceil(deadline / TIMER_GRID) * TIMER_GRID
        armed_for = self._timer_at
        if armed_for is None or deadline < armed_for:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _send(self, data: bytes, peer: Peer) -> None:
        """Over a stream transport, or over UDP without a socket (the pump sends on the UDP
        socket itself)."""
        if peer.transport == "UDP":
            self._on_failure(peer, "no UDP socket")
            return
        stream = self._streams.get(peer.transport)
        if stream is None:
            self._on_failure(peer, f"no {peer.transport} transport")
            return
        stream.send(data, peer, self._server_names.get(peer))

    def _timed_out(self, event: TransactionTimedOut) -> None:
        tx = event.transaction
        if isinstance(tx, ClientTransaction):
            self._finish(tx, Outcome(make_response(kept_request(tx), 408), local=True))
        else:
            log.warning("sip.transaction.no_ack key=%s", tx.key)

    def _transport_failed(self, event: TransportFailed) -> None:
        tx = event.transaction
        if isinstance(tx, ClientTransaction):
            reason = f"Service Unavailable ({event.reason})"[:100]
            response = make_response(kept_request(tx), 503, reason)
            self._finish(tx, Outcome(response, local=True, refused=refused(event.reason)))

    def _acked(self, event: AckReceived) -> None:
        if self.on_ack is not None:
            self.on_ack(event.request)

    def _cancelled(self, event: CancelReceived) -> None:
        if self.on_cancel is not None:
            self.on_cancel(event.invite)

    def _handle_response(self, event: ResponseReceived) -> None:
        tx, response = event.transaction, event.response
        if tx is None:
            log.debug("sip.response.stray status=%s", response.status)
            return
        if response.status < 200:
            callback = self._provisional.get(tx)
            if callback is not None:
                callback(response)
            return
        if tx.is_invite and response.status < 300:
            invite = kept_request(tx)
            self._invites[(invite.call_id, invite.cseq.seq)] = tx
            if len(self._invites) > 1024:
                self._invites.pop(next(iter(self._invites)))
        self._finish(tx, Outcome(response))

    def _finish(self, tx: ClientTransaction, outcome: Outcome) -> None:
        future = self._waiting.pop(tx, None)
        if self._provisional:
            self._provisional.pop(tx, None)
        if future is not None and not future.done():  # done: the caller cancelled it
            future.set_result(outcome)

    def _handle_request(self, event: RequestReceived) -> None:
        request, tx = event.request, event.transaction
        if self.handler is None:
            self.respond(tx, make_response(request, 501))
            return
        if "route" in request.headers:
            consume_own_routes(request, self._addresses.values())
        self._handlers.run(self.handler, ServerRequest(request, tx, self))


def _describe(event: Event) -> str:
    """The event's kind and what identifies it, for a log line."""
    request = getattr(event, "request", None) or getattr(event, "invite", None)
    tx = getattr(event, "transaction", None)
    if request is None and tx is not None:
        request = tx.request
    call_id = None
    if isinstance(request, Request):
        with contextlib.suppress(SipParseError):
            call_id = request.call_id
    key = tx.key if tx is not None else None
    return f"event={type(event).__name__} call_id={call_id} transaction={key}"


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The clock of ``loop`` (``call_at`` deadlines are on it) as one call: asyncio's own
    ``loop.time()`` is ``time.monotonic()`` wrapped in a Python method, read several times
    per message; another loop (uvloop) keeps its own."""
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time
