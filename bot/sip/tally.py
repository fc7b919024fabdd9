"""The SIP messages that crossed the wire, counted under labels from fixed sets (for /metrics):
a method outside :data:`KNOWN_METHODS` counts as ``other``, a status the bot never sends as its
class (``4xx``), so nothing a remote writes can add a series (RFC 3261 §7.1: methods are
extensible tokens; §21: any three-digit status is valid)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

from bot.sip.errors import SipParseError
from bot.sip.message import Response
from bot.sip.validation import KNOWN_METHODS

Direction = Literal["in", "out"]
OTHER = "other"
"""The method label of a method the bot does not know, or of a response it cannot read."""
SENT_STATUSES = frozenset(
    {100, 180, 200, 202, 400, 401, 403, 404, 405, 406, 407, 408, 413, 414, 415, 416, 420,
     422, 423, 480, 481, 486, 487, 488, 489, 491, 500, 501, 503, 504, 505, 513}
)  # fmt: skip
"""Statuses the bot itself answers with: counted by exact value (every status of
``make_response`` in bot/ is here, a test checks it); any other by its class."""
METHOD_LABELS = (*sorted(KNOWN_METHODS), OTHER)
"""Every method label, in the order /metrics lists them."""


def status_label(status: int) -> str:
    if status in SENT_STATUSES:
        return str(status)
    return f"{status // 100}xx" if 100 <= status <= 699 else OTHER


@dataclass(slots=True)
class FlowTally:
    """The messages of one direction, counted for each one on the layer's path with no more
    than a dict entry: per method label for requests, per method label and status for
    responses - a status's label (:func:`status_label`) is worked out when they are read
    (:meth:`read`). A status is three digits (RFC 3261 §7.2): bounded keys there too."""

    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHOD_LABELS, 0))
    """Method label -> requests: every label there from the start."""
    responses: dict[str, defaultdict[int, int]] = field(
        default_factory=lambda: {label: defaultdict(int) for label in METHOD_LABELS}
    )
    """Method label of the CSeq -> status -> responses."""

    def request(self, method: str) -> None:
        self.requests[method if method in KNOWN_METHODS else OTHER] += 1

    def answer(self, method: str, status: int) -> None:
        """A response whose CSeq method is known already (the layer's transaction's)."""
        self.responses[method if method in KNOWN_METHODS else OTHER][status] += 1

    def response(self, response: Response) -> None:
        """A response, counted under the method of its CSeq."""
        try:
            method = response.cseq.method
        except SipParseError:
            method = OTHER
        self.answer(method, response.status)

    def read(self) -> Counter[tuple[str, str]]:
        """Responses by (method label, status label)."""
        counted: Counter[tuple[str, str]] = Counter()
        for method, statuses in self.responses.items():
            for status, count in statuses.items():
                counted[method, status_label(status)] += count
        return counted


@dataclass(slots=True)
class MessageTally:
    """Requests by (direction, method), responses by (direction, method of their CSeq,
    status): first transmissions and whatever arrived, not the layer's own retransmissions
    (LayerStats counts those)."""

    inbound: FlowTally = field(default_factory=FlowTally)
    """What arrived ("in")."""
    outbound: FlowTally = field(default_factory=FlowTally)
    """What the bot sent ("out")."""

    def flows(self) -> tuple[tuple[Direction, FlowTally], ...]:
        """Each direction's label and tally."""
        return ("in", self.inbound), ("out", self.outbound)
