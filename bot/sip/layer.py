"""The transaction layer: bytes in, bytes out, events up, one deadline (RFC 3261 §17, §18).

Sans-IO in the style of aioquic: every input takes ``now`` (seconds, any monotonic clock);
what must go on the wire accumulates in :meth:`datagrams_to_send`; what the transaction user
must hear accumulates in :meth:`next_event`; :meth:`next_deadline` is the one timer to arm.
The client side is :mod:`bot.sip.layer_client`, the server side :mod:`bot.sip.layer_server`,
what they share :mod:`bot.sip.layer_base`; this module routes input and timers to them.
"""

from __future__ import annotations

from bot.sip.errors import SipParseError
from bot.sip.events import TransportFailed
from bot.sip.layer_client import ClientSide
from bot.sip.layer_server import ServerSide
from bot.sip.message import Request, Response, make_response, parse_message
from bot.sip.transaction import (
    ClientTransaction,
    Ev,
    Peer,
    State,
    TimerConfig,
)
from bot.sip.validation import UasPolicy

_ANSWERED = frozenset({State.COMPLETED, State.ACCEPTED})
"""Client transaction states in which the TU already has the final response."""
MAX_MESSAGE_SIZE = 65_535
"""Largest message accepted, in octets: the largest UDP payload; larger requests get 413."""


class TransactionLayer(ClientSide, ServerSide):
    """Both sides of RFC 3261 §17 over one wire, one event queue and one timer heap."""

    def __init__(
        self,
        *,
        timers: TimerConfig | None = None,
        policy: UasPolicy | None = None,
        max_message_size: int = MAX_MESSAGE_SIZE,
    ):
        super().__init__(timers=timers, policy=policy)
        self.max_message_size = max_message_size

    # --- inputs ----------------------------------------------------------------------------

    def receive(self, data: bytes, peer: Peer, now: float) -> None:
        """Bytes of one message (a datagram, or one framed stream message) from ``peer``."""
        self.stats.received += 1
        try:
            message = parse_message(data, datagram=not peer.reliable)
        except SipParseError as exc:
            self._reject_unparseable(exc, peer)
            return
        if isinstance(message, Response):
            self._receive_response(message, now)  # counted there, by the CSeq it reads
            return
        self.stats.messages.inbound.request(message.method)
        if len(data) > self.max_message_size:
            if message.method == "ACK":
                self.stats.dropped += 1  # never answered (RFC 3261 §17.2.3)
            else:
                self._send_stateless(make_response(message, 413), peer)
            return
        self._receive_request(message, peer, now)

    def handle_timer(self, now: float) -> None:
        heads = self._heads
        while heads and heads[0][0] <= now:
            deadline, key, timer = self._pop_first()
            tx = self._armed(key, timer, deadline)
            if tx is None:
                continue
            if isinstance(tx, tuple):  # the record of an answered non-INVITE transaction:
                self._answered_ended(key, tx)  # its Timer J or K (RFC 3261 §17.2.2, §17.1.2.2)
                continue
            del tx.timers[timer]
            # each side's table of what its timers do (RFC 3261 §17.1, §17.2; RFC 6026 §7)
            if isinstance(tx, ClientTransaction):
                self._client_timers[timer](tx, now)
            else:
                self._server_timers[timer](tx, now)

    def transport_failed(self, peer: Peer, reason: str) -> None:
        """The transport cannot reach ``peer``: every transaction bound to it ends (RFC 3261
        §17.1.4, §17.2.4). The TU hears of it, except for client transactions that already
        gave it their final response: it has its answer, there is nothing left to fail."""
        bound = self._by_peer.get(peer.address)
        if not bound:
            return
        for tx in list(bound):
            if isinstance(tx, tuple):  # an answered non-INVITE transaction: a record
                self._answered_ended(tx, self._answered[tx])
                continue
            answered = isinstance(tx, ClientTransaction) and tx.state in _ANSWERED
            tx.move(Ev.TRANSPORT_ERROR)  # allowed from every state but Terminated
            self._forget(tx)
            if not answered:
                self.events.append(TransportFailed(transaction=tx, reason=reason))

    def _reject_unparseable(self, exc: SipParseError, peer: Peer) -> None:
        partial = exc.partial
        # A response needs the request's Via (§8.2.6.2); without one there is no one to tell.
        # An ACK is never answered (RFC 3261 §17.2.3), however malformed.
        if (
            exc.status is None
            or not isinstance(partial, Request)
            or partial.method == "ACK"
            or "via" not in partial.headers
        ):
            self.stats.dropped += 1
            return
        self._send_stateless(make_response(partial, exc.status, exc.response_reason()), peer)
