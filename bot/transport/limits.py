"""Limits on the TCP/TLS connections others open to us (issue 15 item 8): how many, from whom,
and how long they may stay silent or hold half a message (slow-loris).

Sans-IO like the SIP core: everything takes ``now``; the sockets arm the timers.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bot.sip.framing import KeepAlive

log = logging.getLogger(__name__)

Admit = Callable[[str], bool]
"""(source address) -> False to refuse a connection from it at accept."""

REFUSAL_LOG_INTERVAL = 60.0
"""Seconds between two log lines about refused connections from one source."""
REFUSAL_LOG_SOURCES = 1024
"""Sources remembered for that rate limit; beyond it, the oldest half is forgotten."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamLimits:
    """Bounds on the TCP/TLS connections others open to us. Connections we open are ours to
    manage and keep their RFC 5626 keep-alives instead."""

    max_connections: int = 900
    """Inbound connections held at once, all sources together: the usual open-file limit is
    1024, and listeners, outgoing connections, the database and logs need descriptors too."""
    max_connections_per_source: int = 32
    """Inbound connections held at once from one source (an IPv4 address, an IPv6 /64, as the
    guard bans): a proxy needs one or a few, an office NAT one per phone that uses TCP; one
    attacker cannot take the global pool."""
    idle_timeout: float = 900.0
    """Seconds an inbound connection may stay silent before it is closed. RFC 5626 §4.4.1
    clients ping every 95-120 s; this is also longer than a default registration (600 s), so a
    client that only refreshes its registration keeps its flow."""
    header_timeout: float = 10.0
    """Seconds an inbound connection may hold an incomplete message (or, once accepted, send
    no message at all) before it is closed: a SIP message arrives within a few round trips,
    and a slow-loris sender holds a connection this long at most. TLS handshakes get as long."""


def source_of(host: str) -> str:
    """What one party holds: an IPv4 address, or an IPv6 /64 (a host gets a whole /64)."""
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.partition("%")[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:  # an IPv4 client of a dual-stack listener
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class ConnectionGate:
    """Decides at accept whether an inbound connection may be held, and counts those held."""

    def __init__(self, kind: str, limits: StreamLimits, admit: Admit | None = None):
        self.kind = kind
        self.limits = limits
        self._admit = admit
        self._held: Counter[str] = Counter()
        self.held = 0
        """Inbound connections held now."""
        self.refused = 0
        """Inbound connections refused at accept (banned, or over a limit)."""
        self._logged: dict[str, float] = {}

    def accept(self, host: str, now: float) -> bool:
        """May a connection from ``host`` be held? Counts it when it may."""
        source, limits = source_of(host), self.limits
        reason = None
        if self._admit is not None and not self._admit(host):
            reason = "banned"
        elif self.held >= limits.max_connections:
            reason = f"{limits.max_connections} connections held"
        elif self._held[source] >= limits.max_connections_per_source:
            reason = f"{limits.max_connections_per_source} connections from this source"
        if reason is None:
            self._held[source] += 1
            self.held += 1
            return True
        self.refused += 1
        self._log_refusal(source, reason, now)
        return False

    def release(self, host: str) -> None:
        """A connection ``accept`` let in has gone."""
        source = source_of(host)
        self.held -= 1
        self._held[source] -= 1
        if self._held[source] <= 0:
            del self._held[source]

    def _log_refusal(self, source: str, reason: str, now: float) -> None:
        """At most one line per source per REFUSAL_LOG_INTERVAL: a flood of connections must
        not become a flood of log lines."""
        last = self._logged.get(source)
        if last is not None and now - last < REFUSAL_LOG_INTERVAL:
            return
        if len(self._logged) >= REFUSAL_LOG_SOURCES:
            oldest = sorted(self._logged, key=self._logged.__getitem__)
            for stale in oldest[: REFUSAL_LOG_SOURCES // 2]:
                del self._logged[stale]
        self._logged[source] = now
        log.warning(
            "sip.stream.refused transport=%s source=%s reason=%s (refused so far: %d)",
            self.kind,
            source,
            reason,
            self.refused,
        )


class ProgressClock:
    """When an inbound connection must next show progress: ``idle_timeout`` after the last
    octet it sent, and ``header_timeout`` after it began to owe a complete message (from
    accept, and whenever the framer holds part of one)."""

    __slots__ = ("_limits", "_last_received", "_owed_since", "_buffered", "_tail")

    def __init__(self, limits: StreamLimits, now: float):
        self._limits = limits
        self._last_received = now
        self._owed_since: float | None = now  # a connection is opened to send something
        self._buffered = 0
        """Octets the framer holds: each octet fed comes out in exactly one item (a message, a
        ping, a pong) or stays buffered."""
        self._tail = b""
        """The last octets received: is what the framer holds only CRLF?"""

    @property
    def owed(self) -> bool:
        """Is a complete message overdue-able (the header timeout running)?"""
        return self._owed_since is not None

    def received(self, data: bytes, items: list[bytes | KeepAlive], now: float) -> None:
        """``data`` arrived and the framer made ``items`` of it."""
        self._last_received = now
        self._tail = (self._tail + data[-3:])[-3:]
        self._buffered += len(data) - sum(
            len(item.value if isinstance(item, KeepAlive) else item) for item in items
        )
        if self._buffered <= 0 or self._crlf_only():
            self._buffered = max(self._buffered, 0)
            self._owed_since = None
        elif items or self._owed_since is None:
            self._owed_since = now  # something completed: the clock restarts for the rest

    def _crlf_only(self) -> bool:
        """A lone CRLF the framer keeps as the possible first half of a ping (RFC 5626 §3.5.1)
        is a keep-alive in progress, not a message."""
        held = self._buffered
        return held < 4 and not self._tail[-held:].strip(b"\r\n")

    def deadline(self) -> tuple[float, str]:
        """The next deadline (loop time) and what it is for."""
        limits = self._limits
        idle = (self._last_received + limits.idle_timeout, "idle")
        if self._owed_since is None:
            return idle
        return min(idle, (self._owed_since + limits.header_timeout, "no complete message"))
