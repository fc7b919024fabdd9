"""The client side of the transaction layer (RFC 3261 §17.1, RFC 6026 §7.2): requests out,
their retransmissions (Timers A, E), responses in, the ACK of a non-2xx, CANCEL (§9.1)."""

from __future__ import annotations

from collections.abc import Callable

from bot.sip.errors import ProtocolStateError
from bot.sip.events import TransactionTimedOut, response_received
from bot.sip.headers import Headers
from bot.sip.layer_base import LATE_TIMEOUTS, LayerBase
from bot.sip.message import Request, Response
from bot.sip.transaction import (
    ClientTransaction,
    Ev,
    Peer,
    State,
    Timer,
    TimerConfig,
    TimerName,
    kept_request,
    response_event,
)
from bot.sip.validation import UasPolicy

_ResponseHandler = Callable[[ClientTransaction, State, Response, float], None]


class ClientSide(LayerBase):
    def __init__(self, *, timers: TimerConfig | None, policy: UasPolicy | None):
        super().__init__(timers=timers, policy=policy)
        # What a response does, by machine and the state it moved the transaction to
        # (RFC 3261 §17.1.1.2 Figure 5 and §17.1.2.2 Figure 6, RFC 6026 §7.2)
        self._on_response: dict[tuple[bool, State], _ResponseHandler] = {
            (True, State.PROCEEDING): self._invite_provisional,
            (True, State.COMPLETED): self._invite_failed,
            (True, State.ACCEPTED): self._invite_accepted,
            (False, State.PROCEEDING): self._non_invite_provisional,
            (False, State.COMPLETED): self._non_invite_final,
        }
        # What each timer does when it fires (RFC 3261 §17.1, RFC 6026 §7.2)
        self._client_timers: dict[TimerName, Callable[[ClientTransaction, float], None]] = {
            Timer.A: self._retransmit_invite,
            Timer.E: self._retransmit_non_invite,
            Timer.B: self._client_timed_out,
            Timer.F: self._client_timed_out,
            Timer.D: self._client_ended,
            Timer.M: self._client_ended,
        }
        # (Timer K ends an answered non-INVITE request, kept as a record: _answered_ended)

    def send_request(
        self,
        request: Request,
        peer: Peer,
        now: float,
        *,
        wire: bytes | None = None,
        branch: str | None = None,
    ) -> ClientTransaction:
        """Start a client transaction; the top Via must carry an RFC 3261 branch. ``wire`` is
        the request already serialized, and ``branch`` that of its top Via, when the caller
        has them (it wrote that Via)."""
        if request.method == "ACK":
            raise ValueError("ACK is not sent in a transaction: use send_ack()")
        if branch is None:
            branch = request.via.rfc3261_branch
        if branch is None:
            raise ValueError("request needs a Via branch starting with z9hG4bK")
        tx = ClientTransaction((branch, request.method), request, peer)
        tx.wire = wire if wire is not None else request.serialize()
        self._store(self._client, tx)
        self.stats.messages.outbound.request(request.method)
        self.outgoing.append((tx.wire, peer))
        t1 = self.timers.t1
        if peer.reliable:  # Timers A and E: retransmit only over unreliable transports
            self._arm(tx, Timer.B if tx.is_invite else Timer.F, now, 64 * t1)
        elif tx.is_invite:
            tx.interval = t1
            self._arm(tx, Timer.A, now, t1)
            self._arm(tx, Timer.B, now, 64 * t1)
        else:
            tx.interval = t1
            self._arm(tx, Timer.E, now, t1)
            # Timer F is set (64*T1 from now) but queued only when Timer E first fires: most
            # requests are answered before T1, and their F would be one stale entry more to
            # arm and pop 64*T1 later (see _retransmit_non_invite)
            tx.timers[Timer.F] = self._clock + 64 * t1
            tx.timeout_queued = False
        return tx

    def send_ack(self, ack: Request, peer: Peer, transaction: ClientTransaction | None) -> None:
        """Send the TU's ACK for a 2xx (RFC 3261 §13.2.2.4); it is re-sent for every
        retransmission of that 2xx while the transaction is Accepted."""
        wire = ack.serialize()
        self.stats.messages.outbound.request(ack.method)
        if transaction is not None:
            transaction.ack = wire
        self.outgoing.append((wire, peer))

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
        self._arm(transaction, Timer.B, now, 64 * self.timers.t1)
        return cancel

    def _receive_response(self, response: Response, now: float) -> None:
        # parse_message read CSeq and the top Via of every response it returns (§17.1.3)
        method = response.cseq.method
        status = response.status
        self.stats.messages.inbound.answer(method, status)
        key = (response.vias[0].branch, method)  # §17.1.3
        tx = self._client.get(key)
        if tx is None:
            if method == "INVITE" and 200 <= status < 300:
                self.events.append(response_received(response, None))
            elif key not in self._answered:  # there, absorbed in Completed (§17.1.2.2)
                self.stats.dropped += 1
            return
        event = response_event(status)
        before = tx.state
        if before is State.ACCEPTED and tx.ack is not None and self._same_dialog(tx, response):
            self.outgoing.append((tx.ack, tx.peer))  # the 2xx was retransmitted: so is our ACK
            self.stats.retransmissions_sent += 1
            return
        try:
            tx.move(event)
        except ProtocolStateError:
            # a response the transaction no longer expects: a 1xx or a failure (a late 401
            # after a CANCEL) once a 2xx has arrived, a 1xx or 2xx after a failure (RFC 3261
            # §17.1.1.2, RFC 6026 §7.2). It comes from the wire: dropped, never an error of ours
            # (the state table is looked up once, by the move itself).
            self.stats.out_of_state += 1
            return
        if tx.is_invite:
            tx.timers.pop(Timer.A, None)  # §17.1.1.2: any response stops retransmissions
        self._on_response[tx.is_invite, tx.state](tx, before, response, now)

    def _invite_provisional(
        self, tx: ClientTransaction, before: State, response: Response, now: float
    ) -> None:
        if not tx.cancelled:  # §17.1.1.2: in Proceeding only the TU may give up
            tx.timers.pop(Timer.B, None)
        self.events.append(response_received(response, tx))

    def _invite_failed(
        self, tx: ClientTransaction, before: State, response: Response, now: float
    ) -> None:
        # §17.1.1.3: the transaction itself ACKs a non-2xx final response, and each copy of it
        if tx.ack is None:
            ack = _ack_for_failure(kept_request(tx), response)
            self.stats.messages.outbound.request(ack.method)
            tx.ack = ack.serialize()
            tx.last_response = response
            tx.timers.pop(Timer.B, None)
            self._arm(tx, Timer.D, now, 0 if tx.peer.reliable else 32.0)
            self.events.append(response_received(response, tx))
        self.outgoing.append((tx.ack, tx.peer))

    def _invite_accepted(
        self, tx: ClientTransaction, before: State, response: Response, now: float
    ) -> None:
        if before is not State.ACCEPTED:
            tx.timers.pop(Timer.B, None)
            tx.last_response = response
            self._arm(tx, Timer.M, now, 64 * self.timers.t1)  # RFC 6026 §7.2 Timer M
        self.events.append(response_received(response, tx))

    def _non_invite_provisional(
        self, tx: ClientTransaction, before: State, response: Response, now: float
    ) -> None:
        if Timer.E in tx.timers:  # §17.1.2.2: in Proceeding Timer E is reset to T2
            tx.interval = self.timers.t2
        self.events.append(response_received(response, tx))

    def _non_invite_final(
        self, tx: ClientTransaction, before: State, response: Response, now: float
    ) -> None:
        """§17.1.2.2 Completed until Timer K (T4, 0 over a reliable transport): retransmitted
        responses are absorbed, which needs no more than a record of the transaction (its
        key); Timers E and F stop."""
        tx.timers.clear()
        peer = tx.peer
        address = peer.address
        delay = 0 if peer.reliable else self.timers.t4
        self._keep_answered(self._client, tx, Timer.K, delay, now, b"", address)
        self.events.append(response_received(response, tx))

    def _retransmit_invite(self, tx: ClientTransaction, now: float) -> None:
        """Timer A: send the INVITE again; the interval doubles without bound (§17.1.1.2)."""
        self._retransmit_request(tx, Timer.A, tx.interval * 2, now)

    def _retransmit_non_invite(self, tx: ClientTransaction, now: float) -> None:
        """Timer E: send the request again; the interval doubles up to T2, and is T2 once a
        provisional response has come (§17.1.2.2). Its first time, Timer F is queued: every
        first Timer E fires from the one queue of delay T1, in the order the requests were
        sent, so their Timers F (64*T1 after sending) come in deadline order too."""
        if not tx.timeout_queued:
            tx.timeout_queued = True
            deadline = tx.timers[Timer.F]
            queue = self._queues.get(LATE_TIMEOUTS) or self._open_queue(LATE_TIMEOUTS, deadline)
            queue.append((deadline, tx.key, Timer.F))
        t2 = self.timers.t2
        proceeding = tx.state is State.PROCEEDING
        self._retransmit_request(tx, Timer.E, t2 if proceeding else min(tx.interval * 2, t2), now)

    def _retransmit_request(
        self, tx: ClientTransaction, timer: TimerName, interval: float, now: float
    ) -> None:
        tx.move(Ev.TIMER_RETRANSMIT)  # only Calling, Trying and Proceeding allow it
        self.outgoing.append((tx.wire, tx.peer))
        self.stats.retransmissions_sent += 1
        tx.interval = interval
        self._arm(tx, timer, now, interval)

    def _client_timed_out(self, tx: ClientTransaction, now: float) -> None:
        """Timer B or F: no final response came in time (§17.1.1.2, §17.1.2.2)."""
        tx.move(Ev.TIMER_TIMEOUT)  # every state that allows it moves to Terminated
        self._forget(tx)
        self.events.append(TransactionTimedOut(transaction=tx))

    def _client_ended(self, tx: ClientTransaction, now: float) -> None:
        """Timer D or M: no more retransmitted responses to absorb; forget the transaction."""
        tx.move(Ev.TIMER_CLEANUP)
        self._forget(tx)

    @staticmethod
    def _same_dialog(tx: ClientTransaction, response: Response) -> bool:
        first = tx.last_response
        return first is not None and first.to.tag == response.to.tag


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
