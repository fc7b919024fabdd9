"""The server side of the transaction layer (RFC 3261 §17.2, RFC 6026 §7.1): requests in,
validated before anything is kept, the TU's responses out and retransmitted (Timer G), ACKs
matched, CANCEL answered (§9.2), stateless answers (§8.2.7)."""

from __future__ import annotations

from collections.abc import Callable

from bot.sip.errors import SipParseError
from bot.sip.events import AckReceived, CancelReceived, TransactionTimedOut, request_received
from bot.sip.inbound import apply_rport, reply_address, server_key
from bot.sip.layer_base import LayerBase
from bot.sip.message import Request, Response, make_response
from bot.sip.stateless import answered_statelessly
from bot.sip.transaction import (
    Ev,
    Peer,
    ServerTransaction,
    State,
    Timer,
    TimerConfig,
    TimerName,
    kept_request,
    response_event,
)
from bot.sip.validation import UasPolicy, check_request

UNANSWERED = frozenset({"BENOTIFY"})
"""Requests that are never answered, so never held in a transaction."""


class ServerSide(LayerBase):
    def __init__(self, *, timers: TimerConfig | None, policy: UasPolicy | None):
        super().__init__(timers=timers, policy=policy)
        # What sending a final response does, by machine and the state it moved the transaction
        # to (RFC 3261 §17.2.1 Figure 7 as amended by RFC 6026 §7.1, §17.2.2 Figure 8)
        self._on_final: dict[tuple[bool, State], Callable[[ServerTransaction, float], None]] = {
            (True, State.ACCEPTED): self._invite_2xx_sent,
            (True, State.COMPLETED): self._invite_failure_sent,
            (False, State.COMPLETED): self._non_invite_final_sent,
        }
        # What each timer does when it fires (RFC 3261 §17.2, RFC 6026 §7.1)
        # (Timer J ends an answered non-INVITE request, kept as a record: _answered_ended)
        self._server_timers: dict[TimerName, Callable[[ServerTransaction, float], None]] = {
            Timer.G: self._retransmit_response,
            Timer.H: self._server_timed_out,
            Timer.I: self._server_ended,
            Timer.L: self._accepted_ended,
        }

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
        # the CSeq method of a response in a transaction is its request's (RFC 3261 §8.2.6.2)
        self.stats.messages.outbound.answer(tx.method, response.status)
        tx.last_response = response
        tx.wire = response.serialize()
        self.outgoing.append((tx.wire, tx.reply_to))
        if response.status >= 200:
            self._on_final[tx.is_invite, tx.state](tx, now)

    def _non_invite_final_sent(self, tx: ServerTransaction, now: float) -> None:
        """§17.2.2 Completed until Timer J (64*T1, 0 over a reliable transport): absorbing
        retransmitted requests needs the response's bytes and where they go, kept as a
        record (:data:`Answered`)."""
        delay = 0 if tx.peer.reliable else 64 * self.timers.t1
        self._keep_answered(self._server, tx, Timer.J, delay, now, tx.wire, tx.reply_to.address)

    def _invite_2xx_sent(self, tx: ServerTransaction, now: float) -> None:
        # RFC 6026 §7.1 Timer L; the 2xx is retransmitted until ACK (RFC 3261 §13.3.1.4)
        self._arm(tx, Timer.L, now, 64 * self.timers.t1)
        if tx.dialog_key is None:  # the first 2xx: the request is released below
            invite = kept_request(tx)
            tx.dialog_key = (invite.call_id, invite.cseq.seq, invite.from_.tag)
        self._accepted[tx.dialog_key] = tx
        self._start_timer_g(tx, now)
        tx.release()  # Accepted: the 2xx bytes are sent again, its ACK found by dialog_key

    def _invite_failure_sent(self, tx: ServerTransaction, now: float) -> None:
        self._arm(tx, Timer.H, now, 64 * self.timers.t1)  # §17.2.1 Timers G and H
        self._start_timer_g(tx, now)
        tx.release()  # Completed: only the response bytes are sent again, the ACK matched

    def _start_timer_g(self, tx: ServerTransaction, now: float) -> None:
        """§17.2.1: the final response to an INVITE is sent again at T1, 2*T1… over UDP."""
        if not tx.peer.reliable:
            tx.interval = self.timers.t1
            self._arm(tx, Timer.G, now, tx.interval)

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
            via = apply_rport(request, request.via, peer)
            key = server_key(request, via)
        except SipParseError as exc:
            self._send_stateless(make_response(request, 400, exc.response_reason()), peer)
            return
        tx = self._server.get(key)
        if tx is not None:
            self._server_retransmission(tx, request, peer, now)
            return
        answered = self._answered.get(key)
        if answered is not None:  # §17.2.2 Completed: the final response again
            _, response, address, _ = answered
            self.stats.retransmissions_absorbed += 1
            self.outgoing.append((response, Peer(*address)))
            return
        if request.method == "ACK":
            self._ack_without_transaction(request, peer, now)
            return
        reply_to = reply_address(via, peer)
        error = check_request(request, self.policy)
        if error is not None:
            # Validated before anything is stored, and refused statelessly (RFC 3261 §8.2.7):
            # a refused request leaves no state, whatever it holds
            self._send_stateless(error, reply_to)
            return
        tx = ServerTransaction(key, request, peer, reply_to)
        if request.method in UNANSWERED:
            # BENOTIFY is never answered (MS-SIP §3.5, §4.4: "best effort" NOTIFY):
            # nothing would ever end a stored transaction, so none is kept
            self.events.append(request_received(request, tx))
            return
        self._store(self._server, tx)
        if tx.is_invite:
            # §17.2.1: 100 Trying at once, so the client stops retransmitting
            self.respond(tx, make_response(request, 100), now)
        if request.method == "CANCEL":
            self._receive_cancel(tx, now)
            return
        self.events.append(request_received(request, tx))

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
                self._arm(tx, Timer.I, now, 0 if tx.peer.reliable else self.timers.t4)
            return
        self.stats.retransmissions_absorbed += 1
        tx.move(Ev.RETRANSMISSION)
        if tx.wire:  # Trying has nothing to repeat; any later state repeats its last response
            self.outgoing.append((tx.wire, tx.reply_to))

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
        self.events.append(AckReceived(request=ack, peer=peer, transaction=tx))

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
            self.events.append(CancelReceived(request=cancel, invite=invite, transaction=invite_tx))

    def _retransmit_response(self, tx: ServerTransaction, now: float) -> None:
        """Timer G: send the final response again; the interval doubles up to T2 (§17.2.1)."""
        tx.move(Ev.TIMER_RETRANSMIT)
        self.outgoing.append((tx.wire, tx.reply_to))
        self.stats.retransmissions_sent += 1
        tx.interval = min(tx.interval * 2, self.timers.t2)
        self._arm(tx, Timer.G, now, tx.interval)

    def _server_timed_out(self, tx: ServerTransaction, now: float) -> None:
        """Timer H: no ACK for our non-2xx final response (§17.2.1)."""
        tx.move(Ev.TIMER_TIMEOUT)
        self._forget(tx)
        self.events.append(TransactionTimedOut(transaction=tx))

    def _server_ended(self, tx: ServerTransaction, now: float) -> None:
        """Timer I (or L, below): no more retransmitted ACKs to absorb (§17.2.1); Timer J
        ends an answered non-INVITE request as a record (_answered_ended)."""
        tx.move(Ev.TIMER_CLEANUP)
        self._forget(tx)

    def _accepted_ended(self, tx: ServerTransaction, now: float) -> None:
        """Timer L: the accepted INVITE is forgotten; the TU hears of it if no ACK came for
        its 2xx (RFC 6026 §7.1, RFC 3261 §13.3.1.4)."""
        self._server_ended(tx, now)
        if not tx.acked:
            self.events.append(TransactionTimedOut(transaction=tx))


def _response_to_tag(tx: ServerTransaction) -> str | None:
    last = tx.last_response
    if last is None:
        return None
    try:
        return last.to.tag
    except SipParseError:
        return None
