"""The transaction layer: bytes in, bytes out, events up, one deadline (RFC 3261 §17, §18).

Sans-IO in the style of aioquic: every input takes ``now`` (seconds, any monotonic clock);
what must go on the wire accumulates in :meth:`datagrams_to_send`; what the transaction user
must hear accumulates in :meth:`next_event`; :meth:`next_deadline` is the one timer to arm.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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
from bot.sip.grammar import has_param, replace_param
from bot.sip.headers import Headers, Via
from bot.sip.message import Request, Response, make_response, parse_message
from bot.sip.transaction import (
    ClientTransaction,
    Ev,
    Peer,
    ServerTransaction,
    State,
    Timer,
    TimerConfig,
    kept_request,
    response_event,
)
from bot.sip.validation import UasPolicy, check_request

_Tx = TypeVar("_Tx", ClientTransaction, ServerTransaction)
_ANSWERED = frozenset({State.COMPLETED, State.ACCEPTED})
"""Client transaction states in which the TU already has the final response."""
MAX_MESSAGE_SIZE = 65_535
"""Largest message accepted, in octets: the largest UDP payload; larger requests get 413."""


@dataclass(slots=True)
class _Stats:
    received: int = 0
    dropped: int = 0
    retransmissions_absorbed: int = 0
    retransmissions_sent: int = 0
    out_of_state: int = 0
    """Responses a client transaction no longer expected in its state: dropped."""


class TransactionLayer:
    def __init__(
        self,
        *,
        timers: TimerConfig | None = None,
        policy: UasPolicy | None = None,
        max_message_size: int = MAX_MESSAGE_SIZE,
    ):
        self.timers = timers or TimerConfig()
        self.policy = policy or UasPolicy()
        self.max_message_size = max_message_size
        self.stats = _Stats()
        self._server: dict[tuple[object, ...], ServerTransaction] = {}
        self._client: dict[tuple[object, ...], ClientTransaction] = {}
        self._accepted: dict[tuple[str, int, str | None], ServerTransaction] = {}
        # transactions by the peer they are bound to, in creation order: a transport failure
        # touches only that peer's transactions (issue 15 item 8)
        self._by_peer: dict[Peer, dict[ClientTransaction | ServerTransaction, None]] = {}
        self._heap: list[tuple[float, int, ClientTransaction | ServerTransaction, Timer]] = []
        self._seq = itertools.count()
        self._events: deque[Event] = deque()
        self._out: list[tuple[bytes, Peer]] = []
        # What each timer does when it fires, by side (RFC 3261 §17.1, §17.2; RFC 6026 §7)
        self._client_timers: dict[Timer, Callable[[ClientTransaction, float], None]] = {
            Timer.A: self._retransmit_invite,
            Timer.E: self._retransmit_non_invite,
            Timer.B: self._client_timed_out,
            Timer.F: self._client_timed_out,
            Timer.D: self._client_ended,
            Timer.K: self._client_ended,
            Timer.M: self._client_ended,
        }
        self._server_timers: dict[Timer, Callable[[ServerTransaction, float], None]] = {
            Timer.G: self._retransmit_response,
            Timer.H: self._server_timed_out,
            Timer.I: self._server_ended,
            Timer.J: self._server_ended,
            Timer.L: self._accepted_ended,
        }

    # --- outputs ---------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, tx, timer = heap[0]
            if tx.timers.get(timer) == deadline:
                return deadline
            heapq.heappop(heap)  # stale: the timer was cancelled or re-armed
        return None

    @property
    def transaction_count(self) -> int:
        return len(self._server) + len(self._client)

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
            self._receive_response(message, now)
            return
        if len(data) > self.max_message_size:
            if message.method == "ACK":
                self.stats.dropped += 1  # never answered (RFC 3261 §17.2.3)
            else:
                self._send_stateless(make_response(message, 413), peer)
            return
        self._receive_request(message, peer, now)

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, tx, timer = heapq.heappop(heap)
            if tx.timers.get(timer) != deadline:
                continue
            del tx.timers[timer]
            if isinstance(tx, ClientTransaction):
                self._client_timers[timer](tx, now)
            else:
                self._server_timers[timer](tx, now)

    def transport_failed(self, peer: Peer, reason: str) -> None:
        """The transport cannot reach ``peer``: every transaction bound to it ends (RFC 3261
        §17.1.4, §17.2.4). The TU hears of it, except for client transactions that already
        gave it their final response: it has its answer, there is nothing left to fail."""
        bound = self._by_peer.get(peer)
        if not bound:
            return
        for tx in list(bound):
            answered = isinstance(tx, ClientTransaction) and tx.state in _ANSWERED
            tx.move(Ev.TRANSPORT_ERROR)  # allowed from every state but Terminated
            self._forget(tx)
            if not answered:
                self._events.append(TransportFailed(transaction=tx, reason=reason))

    # --- client side (RFC 3261 §17.1) ------------------------------------------------------

    def send_request(
        self, request: Request, peer: Peer, now: float, *, wire: bytes | None = None
    ) -> ClientTransaction:
        """Start a client transaction; the top Via must carry an RFC 3261 branch. ``wire`` is
        the request already serialized, when the caller has it."""
        if request.method == "ACK":
            raise ValueError("ACK is not sent in a transaction: use send_ack()")
        branch = request.via.rfc3261_branch
        if branch is None:
            raise ValueError("request needs a Via branch starting with z9hG4bK")
        tx = ClientTransaction((branch, request.method), request, peer)
        tx.wire = wire if wire is not None else request.serialize()
        self._store(self._client, tx)
        self._out.append((tx.wire, peer))
        t1 = self.timers.t1
        if not peer.reliable:  # Timers A and E: retransmit only over unreliable transports
            tx.interval = t1
            self._arm(tx, Timer.A if tx.is_invite else Timer.E, now + t1)
        self._arm(tx, Timer.B if tx.is_invite else Timer.F, now + 64 * t1)
        return tx

    def send_ack(self, ack: Request, peer: Peer, transaction: ClientTransaction | None) -> None:
        """Send the TU's ACK for a 2xx (RFC 3261 §13.2.2.4); it is re-sent for every
        retransmission of that 2xx while the transaction is Accepted."""
        wire = ack.serialize()
        if transaction is not None:
            transaction.ack = wire
        self._out.append((wire, peer))

    def cancel(self, transaction: ClientTransaction, now: float) -> ClientTransaction | None:
        """CANCEL a pending INVITE (RFC 3261 §9.1); None when there is nothing to cancel."""
        if not transaction.is_invite or transaction.state not in (State.CALLING, State.PROCEEDING):
            return None
        invite = kept_request(transaction)
        headers = Headers()
        headers.add("Via", str(invite.via))
        for name in ("from", "to", "call-id"):
            headers.add(name.title(), invite.headers.get(name) or "")
        headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
        for route in invite.headers.values("route"):
            headers.add("Route", route)
        headers.add("Max-Forwards", "70")
        cancel = self.send_request(Request("CANCEL", invite.uri, headers), transaction.peer, now)
        # §9.1: "If there is no final response for the original request in 64*T1 seconds ...
        # the client ... SHOULD destroy the client transaction handling the original request"
        transaction.cancelled = True
        self._arm(transaction, Timer.B, now + 64 * self.timers.t1)
        return cancel

    def _receive_response(self, response: Response, now: float) -> None:
        via = response.via
        tx = self._client.get((via.branch, response.cseq.method))  # §17.1.3
        if tx is None:
            if response.cseq.method == "INVITE" and 200 <= response.status < 300:
                self._events.append(ResponseReceived(response=response, transaction=None))
            else:
                self.stats.dropped += 1
            return
        event = response_event(response.status)
        before = tx.state
        if before is State.ACCEPTED and tx.ack is not None and self._same_dialog(tx, response):
            self._out.append((tx.ack, tx.peer))  # the 2xx was retransmitted: so is our ACK
            self.stats.retransmissions_sent += 1
            return
        if not tx.allows(event):
            # a response the transaction no longer expects: a 1xx or a failure (a late 401
            # after a CANCEL) once a 2xx has arrived, a 1xx or 2xx after a failure (RFC 3261
            # §17.1.1.2, RFC 6026 §7.2). It comes from the wire: dropped, never an error of ours.
            self.stats.out_of_state += 1
            return
        tx.move(event)
        if tx.is_invite:
            self._invite_client_response(tx, before, response, now)
        else:
            self._non_invite_client_response(tx, before, response, now)

    def _invite_client_response(
        self, tx: ClientTransaction, before: State, response: Response, now: float
    ) -> None:
        tx.timers.pop(Timer.A, None)
        if tx.state is State.PROCEEDING:
            if not tx.cancelled:  # §17.1.1.2: in Proceeding only the TU may give up
                tx.timers.pop(Timer.B, None)
            self._events.append(ResponseReceived(response=response, transaction=tx))
        elif tx.state is State.COMPLETED:
            # §17.1.1.3: the transaction itself ACKs a non-2xx final response
            if tx.ack is None:
                tx.ack = _ack_for_failure(kept_request(tx), response).serialize()
                tx.last_response = response
                tx.timers.pop(Timer.B, None)
                self._arm(tx, Timer.D, now + (0 if tx.peer.reliable else 32.0))
                self._events.append(ResponseReceived(response=response, transaction=tx))
            self._out.append((tx.ack, tx.peer))
        elif tx.state is State.ACCEPTED:
            if before is not State.ACCEPTED:
                tx.timers.pop(Timer.B, None)
                tx.last_response = response
                self._arm(tx, Timer.M, now + 64 * self.timers.t1)  # RFC 6026 §7.2 Timer M
            self._events.append(ResponseReceived(response=response, transaction=tx))

    def _non_invite_client_response(
        self, tx: ClientTransaction, before: State, response: Response, now: float
    ) -> None:
        if before is State.COMPLETED:
            return  # §17.1.2.2: retransmitted final responses are absorbed
        if tx.state is State.PROCEEDING:
            if Timer.E in tx.timers:  # §17.1.2.2: in Proceeding Timer E is reset to T2
                tx.interval = self.timers.t2
            self._events.append(ResponseReceived(response=response, transaction=tx))
            return
        tx.timers.pop(Timer.E, None)
        tx.timers.pop(Timer.F, None)
        self._arm(tx, Timer.K, now + (0 if tx.peer.reliable else self.timers.t4))
        self._events.append(ResponseReceived(response=response, transaction=tx))
        tx.release()  # the TU has the response; Timer K needs none of it

    def _retransmit_invite(self, tx: ClientTransaction, now: float) -> None:
        """Timer A: send the INVITE again; the interval doubles without bound (§17.1.1.2)."""
        self._retransmit_request(tx, Timer.A, tx.interval * 2, now)

    def _retransmit_non_invite(self, tx: ClientTransaction, now: float) -> None:
        """Timer E: send the request again; the interval doubles up to T2, and is T2 once a
        provisional response has come (§17.1.2.2)."""
        t2 = self.timers.t2
        proceeding = tx.state is State.PROCEEDING
        self._retransmit_request(tx, Timer.E, t2 if proceeding else min(tx.interval * 2, t2), now)

    def _retransmit_request(
        self, tx: ClientTransaction, timer: Timer, interval: float, now: float
    ) -> None:
        tx.move(Ev.TIMER_RETRANSMIT)  # only Calling, Trying and Proceeding allow it
        self._out.append((tx.wire, tx.peer))
        self.stats.retransmissions_sent += 1
        tx.interval = interval
        self._arm(tx, timer, now + interval)

    def _client_timed_out(self, tx: ClientTransaction, now: float) -> None:
        """Timer B or F: no final response came in time (§17.1.1.2, §17.1.2.2)."""
        tx.move(Ev.TIMER_TIMEOUT)  # every state that allows it moves to Terminated
        self._forget(tx)
        self._events.append(TransactionTimedOut(transaction=tx))

    def _client_ended(self, tx: ClientTransaction, now: float) -> None:
        """Timer D, K or M: no more retransmitted responses to absorb; forget the transaction."""
        tx.move(Ev.TIMER_CLEANUP)
        self._forget(tx)

    @staticmethod
    def _same_dialog(tx: ClientTransaction, response: Response) -> bool:
        first = tx.last_response
        return first is not None and first.to.tag == response.to.tag

    # --- server side (RFC 3261 §17.2) ------------------------------------------------------

    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> None:
        """Send the TU's response through its server transaction; final answers that
        :func:`answered_statelessly` names are sent and the transaction forgotten at once."""
        tx = transaction
        if tx.state is State.TERMINATED or tx.cancelled:
            return  # the transport failed, or a CANCEL was answered with 487 first (§9.2)
        if answered_statelessly(tx.method, response.status):
            self.respond_stateless(tx, response)
            return
        tx.move(response_event(response.status))
        tx.last_response = response
        tx.wire = response.serialize()
        self._out.append((tx.wire, tx.reply_to))
        if response.status < 200:
            return
        t1 = self.timers.t1
        unreliable = not tx.peer.reliable
        if not tx.is_invite:
            self._arm(tx, Timer.J, now + (64 * t1 if unreliable else 0))  # §17.2.2 Timer J
            tx.release()
        elif tx.state is State.ACCEPTED:
            # RFC 6026 §7.1 Timer L; the 2xx is retransmitted until ACK (RFC 3261 §13.3.1.4)
            self._arm(tx, Timer.L, now + 64 * t1)
            invite = kept_request(tx)
            tx.dialog_key = (invite.call_id, invite.cseq.seq, invite.from_.tag)
            self._accepted[tx.dialog_key] = tx
            if unreliable:
                tx.interval = t1
                self._arm(tx, Timer.G, now + t1)
        else:
            self._arm(tx, Timer.H, now + 64 * t1)  # §17.2.1 Timers G and H
            if unreliable:
                tx.interval = t1
                self._arm(tx, Timer.G, now + t1)
            tx.release()  # Completed: only the response bytes are sent again, the ACK matched

    def respond_stateless(self, transaction: ServerTransaction, response: Response) -> None:
        """Answer and forget the transaction at once, as a stateless UAS does (RFC 3261
        §8.2.7): for challenges to unauthenticated requests, so that a flood of them leaves no
        state behind (§26.3.2.4). A retransmitted request simply gets a fresh answer."""
        tx = transaction
        if tx.state is State.TERMINATED:
            return
        tx.move(Ev.STATELESS_ANSWER)
        self._forget(tx)
        self._send_stateless(response, tx.reply_to)

    def _receive_request(self, request: Request, peer: Peer, now: float) -> None:
        try:
            via = _apply_rport(request, request.via, peer)
            key = _server_key(request, via)
        except SipParseError as exc:
            self._send_stateless(make_response(request, 400, exc.response_reason()), peer)
            return
        tx = self._server.get(key)
        if tx is not None:
            self._server_retransmission(tx, request, peer, now)
            return
        if request.method == "ACK":
            self._ack_without_transaction(request, peer, now)
            return
        reply_to = _reply_to(via, peer)
        error = check_request(request, self.policy)
        if error is not None:
            # Validated before anything is stored, and refused statelessly (RFC 3261 §8.2.7):
            # a refused request leaves no state, whatever it holds
            self._send_stateless(error, reply_to)
            return
        tx = ServerTransaction(key, request, peer, reply_to)
        self._store(self._server, tx)
        if tx.is_invite:
            # §17.2.1: 100 Trying at once, so the client stops retransmitting
            self.respond(tx, make_response(request, 100), now)
        if request.method == "CANCEL":
            self._receive_cancel(tx, now)
            return
        self._events.append(RequestReceived(request=request, transaction=tx))

    def _server_retransmission(
        self, tx: ServerTransaction, request: Request, peer: Peer, now: float
    ) -> None:
        if request.method == "ACK":
            if tx.state is State.ACCEPTED:  # an RFC 2543 ACK for our 2xx
                self._ack_without_transaction(request, peer, now)
                return
            if tx.state in (State.COMPLETED, State.CONFIRMED):
                tx.move(Ev.ACK)
                tx.timers.pop(Timer.G, None)
                tx.timers.pop(Timer.H, None)
                # §17.2.1: Timer I = T4 (unreliable) or 0 (reliable), absorbing ACK copies
                self._arm(tx, Timer.I, now + (0 if tx.peer.reliable else self.timers.t4))
            return
        self.stats.retransmissions_absorbed += 1
        tx.move(Ev.RETRANSMISSION)
        if tx.wire:  # Trying has nothing to repeat; any later state repeats its last response
            self._out.append((tx.wire, tx.reply_to))

    def _ack_without_transaction(self, ack: Request, peer: Peer, now: float) -> None:
        try:
            key = (ack.call_id, ack.cseq.seq, ack.from_.tag)
            _ = ack.to  # what the dialog reads to match it (RFC 3261 §12.2.2)
        except SipParseError:
            self.stats.dropped += 1  # an ACK is never answered (RFC 3261 §17.2.3)
            return
        tx = self._accepted.get(key)
        if tx is not None and tx.state is State.ACCEPTED:
            tx.move(Ev.ACK)
            tx.timers.pop(Timer.G, None)
            tx.acked = True
            self._accepted.pop(key, None)
        self._events.append(AckReceived(request=ack, peer=peer, transaction=tx))

    def _receive_cancel(self, cancel_tx: ServerTransaction, now: float) -> None:
        cancel = kept_request(cancel_tx)
        invite_key = (*cancel_tx.key[:-1], "INVITE")  # §9.2: match as if it were the INVITE
        invite_tx = self._server.get(invite_key)
        if invite_tx is None:
            self.respond(cancel_tx, make_response(cancel, 481), now)
            return
        self.respond(cancel_tx, make_response(cancel, 200), now)
        if invite_tx.state is State.PROCEEDING:
            to_tag = _response_to_tag(invite_tx)
            invite = kept_request(invite_tx)
            self.respond(invite_tx, make_response(invite, 487, to_tag=to_tag), now)
            invite_tx.cancelled = True
            self._events.append(
                CancelReceived(request=cancel, invite=invite, transaction=invite_tx)
            )

    def _retransmit_response(self, tx: ServerTransaction, now: float) -> None:
        """Timer G: send the final response again; the interval doubles up to T2 (§17.2.1)."""
        tx.move(Ev.TIMER_RETRANSMIT)
        self._out.append((tx.wire, tx.reply_to))
        self.stats.retransmissions_sent += 1
        tx.interval = min(tx.interval * 2, self.timers.t2)
        self._arm(tx, Timer.G, now + tx.interval)

    def _server_timed_out(self, tx: ServerTransaction, now: float) -> None:
        """Timer H: no ACK for our non-2xx final response (§17.2.1)."""
        tx.move(Ev.TIMER_TIMEOUT)
        self._forget(tx)
        self._events.append(TransactionTimedOut(transaction=tx))

    def _server_ended(self, tx: ServerTransaction, now: float) -> None:
        """Timer I or J: no more retransmitted ACKs or requests to absorb (§17.2.1, §17.2.2)."""
        tx.move(Ev.TIMER_CLEANUP)
        self._forget(tx)

    def _accepted_ended(self, tx: ServerTransaction, now: float) -> None:
        """Timer L: the accepted INVITE is forgotten; the TU hears of it if no ACK came for
        its 2xx (RFC 6026 §7.1, RFC 3261 §13.3.1.4)."""
        self._server_ended(tx, now)
        if not tx.acked:
            self._events.append(TransactionTimedOut(transaction=tx))

    # --- shared ----------------------------------------------------------------------------

    def _arm(
        self, tx: ClientTransaction | ServerTransaction, timer: Timer, deadline: float
    ) -> None:
        tx.timers[timer] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), tx, timer))

    def _store(self, table: dict[tuple[object, ...], _Tx], tx: _Tx) -> None:
        old = table.get(tx.key)
        if old is not None:  # the same key again (a caller reusing a branch): one per key
            self._unindex(old)
        table[tx.key] = tx
        self._by_peer.setdefault(tx.peer, {})[tx] = None

    def _forget(self, tx: ClientTransaction | ServerTransaction) -> None:
        if isinstance(tx, ClientTransaction):
            if self._client.get(tx.key) is tx:
                del self._client[tx.key]
        else:
            if self._server.get(tx.key) is tx:
                del self._server[tx.key]
            if tx.dialog_key is not None and self._accepted.get(tx.dialog_key) is tx:
                del self._accepted[tx.dialog_key]
        self._unindex(tx)

    def _unindex(self, tx: ClientTransaction | ServerTransaction) -> None:
        bound = self._by_peer.get(tx.peer)
        if bound is not None:
            bound.pop(tx, None)
            if not bound:
                del self._by_peer[tx.peer]

    def _send_stateless(self, response: Response, peer: Peer) -> None:
        self._out.append((response.serialize(), peer))

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


STATELESS_REFUSALS = frozenset(
    {400, 404, 405, 413, 414, 415, 416, 420, 421, 423, 481, 488, 501, 505}
)
"""Final responses to non-INVITE requests sent without keeping the transaction for Timer J.

RFC 3261 §17.2.2 keeps a non-INVITE server transaction in Completed for Timer J only so that
a retransmitted request is answered without the TU seeing it again; a UAS may instead behave
statelessly (§8.2.7) when answering again gives the same answer with no side effect. That is
so for these refusals, each decided from the request alone before anything is done with it:
malformed (400), unknown target (404), method or scheme or extension or media or body not
supported (405, 415, 416, 420, 421, 488, 501, 505), too large (413, 414), interval too brief
(423), no such dialog or transaction (481). So unauthenticated requests, which get exactly
these, leave no state (RFC 3261 §26.3.2.4). Not in the set: 2xx to anything but OPTIONS (a
retransmitted MESSAGE must not run a command twice), 401/407 (the TU challenges statelessly
itself, with a nonce of its choosing), 403 (it follows checking credentials, which may count a
failure), and 408/480/486/5xx (they depend on the moment, and repeat what was done)."""


def answered_statelessly(method: str, status: int) -> bool:
    """Whether the final ``status`` to a ``method`` request is sent without a transaction: a
    listed refusal of a non-INVITE request, or any final answer to OPTIONS, which asks about
    capabilities and changes nothing (RFC 3261 §11.2)."""
    if method in ("INVITE", "ACK") or status < 200:
        return False
    return method == "OPTIONS" or status in STATELESS_REFUSALS


def _server_key(request: Request, via: Via) -> tuple[object, ...]:
    """Server transaction key (RFC 3261 §17.2.3); ACK and CANCEL are keyed by their own method
    except that ACK matches its INVITE."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.rfc3261_branch
    if branch is not None:
        return ("3261", branch, via.host, via.port, method)
    # RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq number and top Via
    return (
        "2543",
        str(request.uri),
        request.from_.tag,
        request.call_id,
        request.cseq.seq,
        str(via),
        method,
    )


def _reply_to(via: Via, peer: Peer) -> Peer:
    """Where responses go: the connection the request came on (RFC 3261 §18.2.2), or over UDP
    the address it really came from, at the port it came from when the Via asks for rport
    (RFC 3581 §4) or else the sent-by port (§18.2.2: the ``received`` address, which is always
    the source). Never a host name: nothing is resolved to answer, and nothing the client
    wrote in its Via picks another address."""
    if peer.reliable:
        return peer
    port = peer.port if has_param(via.params, "rport") else (via.port or 5060)
    return Peer(peer.transport, peer.host, port)


def _apply_rport(request: Request, via: Via, peer: Peer) -> Via:
    """The top Via with ``received`` and ``rport`` written from the real source, replacing any
    value the client put there. RFC 3261 §18.2.1: ``received`` when the sent-by host is not the
    source address; RFC 3581 §4: with ``rport``, ``received`` always and ``rport`` set to the
    source port."""
    params = via.params
    rport = has_param(params, "rport")
    if rport or has_param(params, "received") or via.host.strip("[]") != peer.host:
        params = replace_param(params, "received", peer.host)
    if rport:
        params = replace_param(params, "rport", str(peer.port))
    if params == via.params:
        return via
    top = Via(transport=via.transport, host=via.host, port=via.port, params=params)
    request.headers.remove_first("via")
    request.headers.prepend("Via", str(top))
    return top


def _response_to_tag(tx: ServerTransaction) -> str | None:
    last = tx.last_response
    if last is None:
        return None
    try:
        return last.to.tag
    except SipParseError:
        return None


def _ack_for_failure(request: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", str(request.via))
    headers.add("From", request.headers.get("from") or "")
    headers.add("To", response.headers.get("to") or "")
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", f"{request.cseq.seq} ACK")
    for route in request.headers.values("route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    return Request("ACK", request.uri, headers)
