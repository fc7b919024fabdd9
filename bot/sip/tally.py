"""The SIP messages that crossed the wire, counted under labels from fixed sets (for /metrics):
a method outside :data:`KNOWN_METHODS` counts as ``other``, a status the bot never sends as its
class (``4xx``), so nothing a remote writes can add a series (RFC 3261 §7.1: methods are
extensible tokens; §21: any three-digit status is valid)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from bot.sip.errors import SipParseError
from bot.sip.message import Request, Response
from bot.sip.validation import KNOWN_METHODS

Direction = Literal["in", "out"]
DIRECTIONS: tuple[Direction, ...] = ("in", "out")
OTHER = "other"
"""The method label of a method the bot does not know, or of a response it cannot read."""
SENT_STATUSES = frozenset(
    {100, 180, 200, 202, 400, 401, 403, 404, 405, 406, 407, 408, 413, 414, 415, 416, 420,
     422, 423, 480, 481, 486, 487, 488, 489, 491, 500, 501, 503, 504, 505, 513}
)  # fmt: skip
"""Statuses the bot itself answers with: counted by exact value (every status of
``make_response`` in bot/ is here, a test checks it); any other by its class."""


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER


def status_label(status: int) -> str:
    if status in SENT_STATUSES:
        return str(status)
    return f"{status // 100}xx" if 100 <= status <= 699 else OTHER


_STATUS_LABELS = {status: status_label(status) for status in range(100, 700)}
"""status_label of every valid status, looked up per response instead of worked out."""


@dataclass(slots=True)
class MessageTally:
    """Requests by (direction, method), responses by (direction, method of their CSeq,
    status): first transmissions and whatever arrived, not the layer's own retransmissions
    (LayerStats counts those)."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    responses: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def request(self, direction: Direction, request: Request) -> None:
        method = request.method
        self.requests[direction, method if method in KNOWN_METHODS else OTHER] += 1

    def response(self, direction: Direction, response: Response) -> None:
        """A response, counted under the method of its CSeq."""
        try:
            method = response.cseq.method
        except SipParseError:
            method = OTHER
        self.answer(direction, method, response.status)

    def answer(self, direction: Direction, method: str, status: int) -> None:
        """A response whose CSeq method is known already (the layer's transaction's)."""
        label = method if method in KNOWN_METHODS else OTHER
        self.responses[direction, label, _STATUS_LABELS.get(status, OTHER)] += 1
