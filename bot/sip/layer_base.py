"""What both sides of the transaction layer share: its tables, outputs and timer heap.

:class:`bot.sip.layer.TransactionLayer` is this state with the client side
(:mod:`bot.sip.layer_client`, RFC 3261 §17.1) and the server side (:mod:`bot.sip.layer_server`,
§17.2) on top; only the layer itself is used from outside.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

from bot.sip.events import Event
from bot.sip.message import Response
from bot.sip.tally import MessageTally
from bot.sip.transaction import (
    CLIENT_TIMERS,
    ClientTransaction,
    Peer,
    ServerTransaction,
    Timer,
    TimerConfig,
    TimerName,
)
from bot.sip.validation import UasPolicy

_Tx = TypeVar("_Tx", ClientTransaction, ServerTransaction)
Address = tuple[str, str, int]
"""A peer's (transport, host, port): :attr:`Peer.address`."""
Answered = tuple[float, bytes, Address, Address]
"""A non-INVITE transaction that has its final response, until its last timer: the deadline of
that timer, the response's bytes, where they go, and the peer the transaction is bound to.
Server side (RFC 3261 §17.2.2 Completed, Timer J): what absorbing a retransmitted request needs,
the response sent again to where responses go. Client side (§17.1.2.2 Completed, Timer K):
retransmitted responses are absorbed, which needs nothing but the record (no bytes; the peer
twice). Plain strings, numbers and bytes, which the garbage collector leaves out of its scans,
where a transaction object kept for Timer J (32 s over UDP) or K (5 s), thousands a second,
was one more object in every one."""
RECORD_TIMERS: frozenset[TimerName] = frozenset({Timer.J, Timer.K})
"""The timers that end a record of an answered non-INVITE transaction (:data:`Answered`)."""
LATE_TIMEOUTS = -1.0
"""The key of the timer queue of Timer F entries queued when Timer E first fires (the other
queues are keyed by their delay, never negative): see ClientSide.send_request."""
_Armed = tuple[float, tuple[object, ...], TimerName]
"""A timer as queued: its deadline, the key of whose it is, which one. It is stale (cancelled,
armed again, or its transaction gone) when no transaction under that key holds that deadline
for it. Not the transaction itself: a tuple of a float, strings and ints is left out of the
garbage collector's scans, and a cancelled timer (Timer E once the final response came, or a
Timer F queued after a first retransmission) does not keep its transaction alive."""


@dataclass(slots=True)
class LayerStats:
    """Counters of what the layer did with what came in and went out, since it started."""

    received: int = 0
    dropped: int = 0
    retransmissions_absorbed: int = 0
    retransmissions_sent: int = 0
    out_of_state: int = 0
    """Responses a client transaction no longer expected in its state: dropped."""
    messages: MessageTally = field(default_factory=MessageTally)
    """Requests and responses in and out, by method and status."""


_Bound = ClientTransaction | ServerTransaction | tuple[object, ...]
"""What a peer's transactions are indexed as: the transaction, or an answered request's key."""


class LayerBase:
    def __init__(self, *, timers: TimerConfig | None, policy: UasPolicy | None):
        self.timers = timers or TimerConfig()
        self.policy = policy or UasPolicy()
        self.stats = LayerStats()
        self._server: dict[tuple[object, ...], ServerTransaction] = {}
        self._client: dict[tuple[object, ...], ClientTransaction] = {}
        self._accepted: dict[tuple[str, int, str | None], ServerTransaction] = {}
        self._answered: dict[tuple[object, ...], Answered] = {}
        """Answered non-INVITE transactions until their Timer J (server) or K (client), by
        transaction key (a server key and a client one are never equal: see server_key)."""
        # transactions (and the keys of answered requests) by the address of the peer they are
        # bound to, in creation order: a transport failure touches only that peer's
        # transactions (issue 15 item 8)
        self._by_peer: dict[Address, dict[_Bound, None]] = {}
        # Armed timers, one first-in first-out queue per delay: every timer is armed for now +
        # a delay, so each queue is in deadline order and arming is an append; a small heap
        # holds each non-empty queue's first deadline (a dozen delays: T1 doubling to T2,
        # 64*T1, T4, 0 over reliable transports, 32 s), where one heap of every timer cost
        # log2(hundreds of thousands) to pop at thousands of transactions a second. One more
        # queue (LATE_TIMEOUTS) holds Timer F entries queued late, in deadline order too.
        self._queues: dict[float, deque[_Armed]] = {}
        self._heads: list[tuple[float, float]] = []
        """(first deadline, delay) of each non-empty queue."""
        self._clock = float("-inf")
        """The latest ``now`` a timer was armed at: an earlier one counts as this one, so that
        each queue stays in deadline order."""
        self._displaced: dict[tuple[object, ...], list[ClientTransaction | ServerTransaction]] = {}
        """Transactions whose key a newer one took (a caller reusing a branch) while timers
        of theirs were armed: they still run to their end on those timers."""
        self.events: deque[Event] = deque()
        """What the TU must hear, oldest first: taken with :meth:`next_event` (or popped from
        the left by the endpoint's pump, which takes them all)."""
        self.outgoing: list[tuple[bytes, Peer]] = []
        """What must go on the wire, in order: taken with :meth:`datagrams_to_send` (or by
        the endpoint's pump, which swaps the list for an empty one itself)."""
        self.heads_added = 0
        """How many times a timer queue got a first entry: the only change that can make
        :meth:`next_deadline` earlier (each queue is in deadline order; a timer firing or
        cancelled only makes it later). A caller that armed a wake-up for the next deadline
        needs to ask again only when this changed, or once its wake-up has run."""

    # --- outputs ---------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        return self.events.popleft() if self.events else None

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        out, self.outgoing = self.outgoing, []
        return out

    def next_deadline(self) -> float | None:
        heads = self._heads
        while heads:
            deadline, delay = heads[0]
            _, key, timer = self._queues[delay][0]
            if self._armed(key, timer, deadline) is not None:
                return deadline
            self._pop_first()  # stale: the timer was cancelled or re-armed
        return None

    def _armed(
        self, key: tuple[object, ...], timer: TimerName, deadline: float
    ) -> ClientTransaction | ServerTransaction | Answered | None:
        """The transaction under ``key`` whose ``timer`` is armed for ``deadline``, if any: for
        Timers J and K, the record of the answered transaction."""
        if timer in RECORD_TIMERS:
            answered = self._answered.get(key)
            return answered if answered is not None and answered[0] == deadline else None
        tx: ClientTransaction | ServerTransaction | None
        tx = (self._client if timer in CLIENT_TIMERS else self._server).get(key)
        if tx is not None and tx.timers.get(timer) == deadline:
            return tx
        if self._displaced:  # mostly empty: a cancelled timer costs no second look-up
            for old in self._displaced.get(key, ()):
                if old.timers.get(timer) == deadline:
                    return old
        return None

    @property
    def transaction_count(self) -> int:
        """Transactions held: client, server, and answered ones awaiting Timer J or K."""
        return len(self._server) + len(self._client) + len(self._answered)

    # --- shared ----------------------------------------------------------------------------

    def _arm(
        self, tx: ClientTransaction | ServerTransaction, timer: TimerName, now: float, delay: float
    ) -> None:
        """Arm ``timer`` of ``tx`` to fire ``delay`` seconds after ``now``."""
        tx.timers[timer] = self._enqueue(tx.key, timer, now, delay)

    def _enqueue(
        self, key: tuple[object, ...], timer: TimerName, now: float, delay: float
    ) -> float:
        """Queue ``timer`` of whatever is under ``key`` for ``delay`` seconds after ``now``;
        its deadline."""
        if now < self._clock:
            now = self._clock
        else:
            self._clock = now
        deadline = now + delay
        # a queue is dropped once empty (_pop_first): one that is there has entries
        queue = self._queues.get(delay) or self._open_queue(delay, deadline)
        queue.append((deadline, key, timer))
        return deadline

    def _open_queue(self, queue_key: float, deadline: float) -> deque[_Armed]:
        """A new, empty queue under ``queue_key``, whose first entry will be due at
        ``deadline``: the heads know it from now on."""
        queue: deque[_Armed] = deque()
        self._queues[queue_key] = queue
        heapq.heappush(self._heads, (deadline, queue_key))
        self.heads_added += 1
        return queue

    def _pop_first(self) -> _Armed:
        """Take the timer with the earliest deadline (the first of the queue at the top of
        the heads) off its queue."""
        heads, queues = self._heads, self._queues
        delay = heads[0][1]
        queue = queues[delay]
        first = queue.popleft()
        if queue:
            heapq.heapreplace(heads, (queue[0][0], delay))
        else:
            heapq.heappop(heads)
            del queues[delay]
        return first

    def _store(self, table: dict[tuple[object, ...], _Tx], tx: _Tx) -> None:
        old = table.get(tx.key)
        if old is not None:  # the same key again (a caller reusing a branch): one per key
            self._unindex(old.peer.address, old)
            if old.timers:
                self._displaced.setdefault(tx.key, []).append(old)
        table[tx.key] = tx
        address = tx.peer.address
        bound = self._by_peer.get(address)
        if bound is None:
            self._by_peer[address] = {tx: None}
        else:
            bound[tx] = None

    def _keep_answered(
        self,
        table: dict[tuple[object, ...], _Tx],
        tx: _Tx,
        timer: TimerName,
        delay: float,
        now: float,
        response: bytes,
        reply_to: Address,
    ) -> None:
        """``tx`` has its final response: until ``timer`` (J, K), ``delay`` seconds from
        ``now``, what is left to do needs only a record (:data:`Answered`), which takes the
        transaction's places in ``table`` and in its peer's index; the transaction object is
        the TU's alone, in its final state."""
        key, address = tx.key, tx.peer.address
        deadline = self._enqueue(key, timer, now, delay)
        old = self._answered.get(key)
        if old is not None and old[3] != address:  # the same key from another peer
            self._unindex(old[3], key)
        self._answered[key] = (deadline, response, reply_to, address)
        if table.get(key) is tx:
            del table[key]
        bound = self._by_peer.get(address)
        if bound is None:
            self._by_peer[address] = {key: None}
        else:
            bound.pop(tx, None)
            bound[key] = None

    def _answered_ended(self, key: tuple[object, ...], answered: Answered) -> None:
        """Timer J or K, or a transport failure: an answered transaction's record is forgotten
        (RFC 3261 §17.1.2.2, §17.2.2)."""
        source = answered[3]
        del self._answered[key]
        self._unindex(source, key)

    def _forget(self, tx: ClientTransaction | ServerTransaction) -> None:
        if isinstance(tx, ClientTransaction):
            if self._client.get(tx.key) is tx:
                del self._client[tx.key]
        else:
            if self._server.get(tx.key) is tx:
                del self._server[tx.key]
            if tx.dialog_key is not None and self._accepted.get(tx.dialog_key) is tx:
                del self._accepted[tx.dialog_key]
        if self._displaced:
            self._undisplace(tx)
        self._unindex(tx.peer.address, tx)

    def _undisplace(self, tx: ClientTransaction | ServerTransaction) -> None:
        displaced = self._displaced.get(tx.key)
        if displaced is not None and tx in displaced:
            displaced.remove(tx)
            if not displaced:
                del self._displaced[tx.key]

    def _unindex(self, address: Address, entry: _Bound) -> None:
        bound = self._by_peer.get(address)
        if bound is not None:
            bound.pop(entry, None)
            if not bound:
                del self._by_peer[address]

    def _send_stateless(self, response: Response, peer: Peer) -> None:
        self.stats.messages.outbound.response(response)
        self.outgoing.append((response.serialize(), peer))
