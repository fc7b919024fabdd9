"""The four transaction state machines of RFC 3261 §17, with the RFC 6026 Accepted state.

Each machine is a table ``(state, event) -> state``; a move the table does not list raises
:class:`ProtocolStateError`. Timers are deadlines (seconds on the caller's clock) kept in
``timers``; :class:`bot.sip.layer.TransactionLayer` owns the clock, the wire and the events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

from bot.sip.errors import ProtocolStateError
from bot.sip.message import Request, Response


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerConfig:
    """RFC 3261 §17.1.1.1 and Table 4 base values, in seconds."""

    t1: float = 0.5
    """Round-trip estimate; retransmissions start at T1 and transactions give up after 64*T1."""
    t2: float = 4.0
    """Cap on the retransmission interval of non-INVITE requests and INVITE responses."""
    t4: float = 5.0
    """How long a message may stay in the network (Timers I and K)."""


@dataclass(frozen=True, slots=True)
class Peer:
    """Where a message comes from or goes to: transport (UDP, TCP, TLS), host and port."""

    transport: str
    host: str
    port: int
    reliable: bool = field(init=False, repr=False, compare=False)
    """Not UDP (RFC 3261 §17: no retransmissions, timers at 0); worked out once, as the layer
    reads it several times per message."""
    address: tuple[str, str, int] = field(init=False, repr=False, compare=False)
    """(transport, host, port) as a plain tuple: what the layer indexes transactions by (a
    tuple hashes in C, a dataclass in Python), and what a record of an answered request keeps
    instead of the object (strings and ints: nothing for the garbage collector)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reliable", self.transport != "UDP")
        object.__setattr__(self, "address", (self.transport, self.host, self.port))


class _Member(enum.Enum):
    """Members hashed by identity, in C: each is a singleton compared by identity anyway,
    and enum.Enum's own __hash__ (Python code hashing the name) ran about ten times per
    message (transaction tables, timers)."""

    __hash__ = object.__hash__


TimerName = Literal["A", "B", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M"]
"""A transaction timer, by its letter."""


class Timer:
    """The transaction timers (RFC 3261 §17 and Table 4; L and M from RFC 6026 §7.1, §7.2).

    Each is its letter, a plain string and no object of a class of ours: a transaction's armed
    timers (``timers``, letter -> deadline) and the layer's queued ones are then made of
    strings and floats only, which the garbage collector leaves out of its scans. At thousands
    of transactions a second kept for Timer J (32 s), a dict and a tuple per transaction that
    it scanned made its pauses tens of milliseconds longer."""

    A: Final = "A"
    """INVITE request retransmission, unreliable transports only (§17.1.1.2)."""
    B: Final = "B"
    """INVITE transaction timeout: no final response in 64*T1 (§17.1.1.2, §9.1)."""
    D: Final = "D"
    """Wait for retransmitted non-2xx responses to an INVITE: 32 s or 0 (§17.1.1.2)."""
    E: Final = "E"
    """Non-INVITE request retransmission, unreliable transports only (§17.1.2.2)."""
    F: Final = "F"
    """Non-INVITE transaction timeout: no final response in 64*T1 (§17.1.2.2)."""
    G: Final = "G"
    """INVITE final response retransmission, unreliable transports only (§17.2.1)."""
    H: Final = "H"
    """Wait for the ACK of a non-2xx final response: 64*T1 (§17.2.1)."""
    I: Final = "I"  # noqa: E741 - the RFC's name
    """Absorb retransmitted ACKs in Confirmed: T4 or 0 (§17.2.1)."""
    J: Final = "J"
    """Absorb retransmitted non-INVITE requests: 64*T1 or 0 (§17.2.2)."""
    K: Final = "K"
    """Absorb retransmitted responses to a non-INVITE request: T4 or 0 (§17.1.2.2)."""
    L: Final = "L"
    """Absorb retransmitted INVITEs and wait for the ACK of a 2xx: 64*T1 (RFC 6026 §7.1)."""
    M: Final = "M"
    """Absorb retransmitted 2xx responses to an INVITE: 64*T1 (RFC 6026 §7.2)."""


CLIENT_TIMERS: frozenset[TimerName] = frozenset(
    {Timer.A, Timer.B, Timer.D, Timer.E, Timer.F, Timer.K, Timer.M}
)
"""The timers of client transactions (RFC 3261 §17.1); the others are server ones (§17.2)."""


class State(_Member):
    TRYING = "Trying"
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Ev(_Member):
    """Inputs of the machines: responses by class, requests, timers, transport errors."""

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    RETRANSMISSION = "request retransmission"
    ACK = "ACK"
    TIMER_RETRANSMIT = "retransmit timer (A/E/G)"
    TIMER_TIMEOUT = "timeout timer (B/F/H)"
    TIMER_CLEANUP = "clean-up timer (D/I/J/K/L/M)"
    TRANSPORT_ERROR = "transport error"
    STATELESS_ANSWER = "answered statelessly (RFC 3261 §8.2.7)"


S, E = State, Ev
Table = dict[tuple[State, Ev], State]
_ANY_TERMINATES: Table = {
    (s, event): S.TERMINATED
    for s in State
    if s is not S.TERMINATED
    for event in (E.TRANSPORT_ERROR, E.STATELESS_ANSWER)
}

# RFC 3261 §17.1.1.2, Figure 5, as amended by RFC 6026 §7.2 (Accepted, Timer M)
INVITE_CLIENT: Table = {
    (S.CALLING, E.TIMER_RETRANSMIT): S.CALLING,
    (S.CALLING, E.TIMER_TIMEOUT): S.TERMINATED,
    (S.CALLING, E.PROVISIONAL): S.PROCEEDING,
    (S.CALLING, E.SUCCESS): S.ACCEPTED,
    (S.CALLING, E.FAILURE): S.COMPLETED,
    (S.PROCEEDING, E.PROVISIONAL): S.PROCEEDING,
    (S.PROCEEDING, E.SUCCESS): S.ACCEPTED,
    (S.PROCEEDING, E.FAILURE): S.COMPLETED,
    (S.PROCEEDING, E.TIMER_RETRANSMIT): S.PROCEEDING,  # a stale Timer A after a 1xx: ignored
    # Timer B stops at the first 1xx; a CANCEL arms it again (RFC 3261 §9.1: no final response
    # 64*T1 after the CANCEL, and the INVITE transaction is destroyed)
    (S.PROCEEDING, E.TIMER_TIMEOUT): S.TERMINATED,
    (S.COMPLETED, E.FAILURE): S.COMPLETED,
    (S.COMPLETED, E.TIMER_CLEANUP): S.TERMINATED,
    (S.ACCEPTED, E.SUCCESS): S.ACCEPTED,
    (S.ACCEPTED, E.TIMER_CLEANUP): S.TERMINATED,
    **_ANY_TERMINATES,
}
# RFC 3261 §17.1.2.2, Figure 6
NON_INVITE_CLIENT: Table = {
    (S.TRYING, E.TIMER_RETRANSMIT): S.TRYING,
    (S.TRYING, E.TIMER_TIMEOUT): S.TERMINATED,
    (S.TRYING, E.PROVISIONAL): S.PROCEEDING,
    (S.TRYING, E.SUCCESS): S.COMPLETED,
    (S.TRYING, E.FAILURE): S.COMPLETED,
    (S.PROCEEDING, E.TIMER_RETRANSMIT): S.PROCEEDING,
    (S.PROCEEDING, E.TIMER_TIMEOUT): S.TERMINATED,
    (S.PROCEEDING, E.PROVISIONAL): S.PROCEEDING,
    (S.PROCEEDING, E.SUCCESS): S.COMPLETED,
    (S.PROCEEDING, E.FAILURE): S.COMPLETED,
    (S.COMPLETED, E.PROVISIONAL): S.COMPLETED,
    (S.COMPLETED, E.SUCCESS): S.COMPLETED,
    (S.COMPLETED, E.FAILURE): S.COMPLETED,
    (S.COMPLETED, E.TIMER_CLEANUP): S.TERMINATED,
    **_ANY_TERMINATES,
}
# RFC 3261 §17.2.1, Figure 7, as amended by RFC 6026 §7.1 (Accepted, Timer L)
INVITE_SERVER: Table = {
    (S.PROCEEDING, E.RETRANSMISSION): S.PROCEEDING,
    (S.PROCEEDING, E.PROVISIONAL): S.PROCEEDING,
    (S.PROCEEDING, E.SUCCESS): S.ACCEPTED,
    (S.PROCEEDING, E.FAILURE): S.COMPLETED,
    (S.ACCEPTED, E.RETRANSMISSION): S.ACCEPTED,
    (S.ACCEPTED, E.SUCCESS): S.ACCEPTED,
    (S.ACCEPTED, E.TIMER_RETRANSMIT): S.ACCEPTED,
    (S.ACCEPTED, E.ACK): S.ACCEPTED,
    (S.ACCEPTED, E.TIMER_CLEANUP): S.TERMINATED,
    (S.COMPLETED, E.RETRANSMISSION): S.COMPLETED,
    (S.COMPLETED, E.TIMER_RETRANSMIT): S.COMPLETED,
    (S.COMPLETED, E.TIMER_TIMEOUT): S.TERMINATED,
    (S.COMPLETED, E.ACK): S.CONFIRMED,
    (S.CONFIRMED, E.ACK): S.CONFIRMED,
    (S.CONFIRMED, E.RETRANSMISSION): S.CONFIRMED,
    (S.CONFIRMED, E.TIMER_CLEANUP): S.TERMINATED,
    **_ANY_TERMINATES,
}
# RFC 3261 §17.2.2, Figure 8
NON_INVITE_SERVER: Table = {
    (S.TRYING, E.RETRANSMISSION): S.TRYING,
    (S.TRYING, E.PROVISIONAL): S.PROCEEDING,
    (S.TRYING, E.SUCCESS): S.COMPLETED,
    (S.TRYING, E.FAILURE): S.COMPLETED,
    (S.PROCEEDING, E.RETRANSMISSION): S.PROCEEDING,
    (S.PROCEEDING, E.PROVISIONAL): S.PROCEEDING,
    (S.PROCEEDING, E.SUCCESS): S.COMPLETED,
    (S.PROCEEDING, E.FAILURE): S.COMPLETED,
    (S.COMPLETED, E.RETRANSMISSION): S.COMPLETED,
    (S.COMPLETED, E.TIMER_CLEANUP): S.TERMINATED,
    **_ANY_TERMINATES,
}


def response_event(status: int) -> Ev:
    if status < 200:
        return Ev.PROVISIONAL
    return Ev.SUCCESS if status < 300 else Ev.FAILURE


class Transaction:
    """State shared by all four machines."""

    __slots__ = (
        "key", "method", "is_invite", "peer", "state", "timers", "interval", "wire", "_table",
        "name",
    )  # fmt: skip

    _MACHINES: ClassVar[tuple[tuple[Table, State, str], tuple[Table, State, str]]]
    """(table, initial state, name) of the class's non-INVITE machine, then of its INVITE one:
    picked by ``is_invite`` (no arguments to pass for them: thousands of transactions a
    second)."""

    def __init__(self, key: tuple[object, ...], request: Request, peer: Peer):
        self.key = key
        self.method = method = request.method
        self.is_invite = invite = method == "INVITE"
        self.peer = peer
        self._table, self.state, self.name = self._MACHINES[invite]
        self.timers: dict[TimerName, float] = {}
        """Armed timers: absolute deadlines in seconds."""
        self.interval = 0.0
        """Current retransmission interval (Timers A, E, G), in seconds."""
        self.wire = b""
        """The bytes retransmitted: the request (client) or the last response (server)."""

    def move(self, event: Ev) -> State:
        """Apply ``event``; raise :class:`ProtocolStateError` for a move the RFC does not allow."""
        new = self._table.get((self.state, event))
        if new is None:
            raise ProtocolStateError(self.name, self.state.value, event.value)
        self.state = new
        if new is State.TERMINATED:
            self.timers.clear()
        return new


class ClientTransaction(Transaction):
    __slots__ = ("request", "last_response", "ack", "cancelled", "timeout_queued")

    _MACHINES = (
        (NON_INVITE_CLIENT, State.TRYING, "non-INVITE client transaction"),
        (INVITE_CLIENT, State.CALLING, "INVITE client transaction"),
    )

    def __init__(self, key: tuple[object, ...], request: Request, peer: Peer):
        Transaction.__init__(self, key, request, peer)  # no super object: one per request
        self.request: Request | None = request
        """The request (an INVITE's is kept for its CANCEL and ACK)."""
        self.last_response: Response | None = None
        self.ack: bytes | None = None
        """ACK sent by the transaction (non-2xx, §17.1.1.3) or by the TU for a 2xx."""
        self.cancelled = False
        """We sent a CANCEL for this INVITE: Timer B runs again, through any 1xx (§9.1)."""
        self.timeout_queued = True
        """Timer F is queued; False while it is only set, until Timer E first fires (a
        non-INVITE request over UDP: see ClientSide.send_request)."""


class ServerTransaction(Transaction):
    __slots__ = ("request", "reply_to", "last_response", "acked", "dialog_key", "cancelled")

    _MACHINES = (
        (NON_INVITE_SERVER, State.TRYING, "non-INVITE server transaction"),
        (INVITE_SERVER, State.PROCEEDING, "INVITE server transaction"),
    )

    def __init__(self, key: tuple[object, ...], request: Request, peer: Peer, reply_to: Peer):
        Transaction.__init__(self, key, request, peer)
        self.request: Request | None = request
        """The request; dropped (None) once the transaction has its final response, when only
        ``wire`` is needed to absorb retransmissions (and ``dialog_key`` to match the ACK of an
        INVITE's 2xx, RFC 6026 §7.1). At thousands of transactions a second held for Timer J
        (32 s), keeping every parsed request would cost gigabytes."""
        self.reply_to = reply_to
        """Where responses go (RFC 3261 §18.2.2), worked out once from the top Via."""
        self.last_response: Response | None = None
        self.acked = False
        """An ACK arrived for our 2xx (RFC 3261 §13.3.1.4)."""
        self.dialog_key: tuple[str, int, str | None] | None = None
        """(Call-ID, CSeq number, From tag) of an accepted INVITE: how its 2xx ACK is found."""
        self.cancelled = False
        """A CANCEL ended this INVITE with 487 (RFC 3261 §9.2); the TU's answer comes too late."""

    def release(self) -> None:
        """Keep only what absorbing retransmissions needs (after a final response to an
        INVITE: §17.2.1 Completed, RFC 6026 §7.1 Accepted)."""
        self.request = None
        self.last_response = None


def kept_request(tx: ClientTransaction | ServerTransaction) -> Request:
    """The request of a transaction that still keeps it (INVITE, or not yet answered)."""
    if tx.request is None:
        raise ProtocolStateError(tx.name, tx.state.value, "read the released request")
    return tx.request
