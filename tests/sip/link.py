"""Two transaction layers over a fake network with a fake clock, for transaction tests."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.sip import Headers, Request, Response, parse_message, parse_uri
from bot.sip.events import Event
from bot.sip.layer import TransactionLayer
from bot.sip.message import new_branch
from bot.sip.transaction import Peer, TimerConfig

Fault = Callable[[bytes, Peer], bool]
"""Returns True to drop this datagram (going to ``Peer``)."""


@dataclass
class Sent:
    at: float
    data: bytes
    to: Peer

    @property
    def message(self) -> Request | Response:
        return parse_message(self.data, datagram=not self.to.reliable)

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode()


@dataclass
class Link:
    """``client`` (at ``client_peer``) and ``server`` (at ``server_peer``) joined by a network
    that can drop, duplicate and reorder; ``now`` advances only through :meth:`advance`."""

    transport: str = "UDP"
    timers: TimerConfig = field(default_factory=TimerConfig)
    drop: Fault | None = None
    duplicate: float = 0.0
    reorder: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    now: float = 0.0
    wire: list[Sent] = field(default_factory=list)
    client_events: list[Event] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = TransactionLayer(timers=self.timers)
        self.server = TransactionLayer(timers=self.timers)
        self.client_peer = Peer(self.transport, "192.0.2.1", 5060)
        self.server_peer = Peer(self.transport, "192.0.2.2", 5060)

    def request(self, method: str, *, branch: str | None = None, body: bytes = b"") -> Request:
        branch = branch or new_branch()
        headers = Headers.of(
            ("Via", f"SIP/2.0/{self.transport} 192.0.2.1:5060;branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@example.test>;tag=a1"),
            ("To", "<sip:bot@example.test>"),
            ("Call-ID", f"call-{branch}"),
            ("CSeq", f"1 {method}"),
            ("Contact", "<sip:alice@192.0.2.1:5060>"),
        )
        if body:
            headers.add("Content-Type", "text/plain")
        return Request(method, parse_uri("sip:bot@192.0.2.2"), headers, body)

    def flush(self) -> None:
        """Carry everything queued until both sides are quiet, applying the faults."""
        while True:
            batch: list[tuple[bytes, Peer]] = []
            for data, to in self.client.datagrams_to_send() + self.server.datagrams_to_send():
                self.wire.append(Sent(self.now, data, to))
                if self.drop is not None and self.drop(data, to):
                    continue
                batch.append((data, to))
                if self.duplicate and self.rng.random() < self.duplicate:
                    batch.append((data, to))
            if not batch:
                break
            if self.reorder:
                self.rng.shuffle(batch)
            for data, to in batch:
                if to == self.server_peer:
                    self.server.receive(data, self.client_peer, self.now)
                else:
                    self.client.receive(data, self.server_peer, self.now)
        self._collect()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing every timer due on the way."""
        end = self.now + seconds
        self.flush()
        while True:
            deadlines = [
                d
                for d in (self.client.next_deadline(), self.server.next_deadline())
                if d is not None
            ]
            due = min(deadlines, default=None)
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            self.client.handle_timer(self.now)
            self.server.handle_timer(self.now)
            self.flush()
        self.now = end

    def _collect(self) -> None:
        while (event := self.client.next_event()) is not None:
            self.client_events.append(event)
        while (event := self.server.next_event()) is not None:
            self.server_events.append(event)

    def sent(self, prefix: str) -> list[Sent]:
        """Datagrams put on the wire whose first line starts with ``prefix``."""
        return [s for s in self.wire if s.first_line.startswith(prefix)]
