"""Receipts for the bot's own messages (RFC 5438): which of its replies were delivered or
displayed, counted for metrics. Bounded; a missing receipt is logged, never asked again."""

from __future__ import annotations

from collections import Counter, OrderedDict

import structlog

from bot.im.imdn import STATUSES, Notification

log = structlog.get_logger("bot.im")
TRACKED = 10_000


class ReceiptBook:
    def __init__(self) -> None:
        self._sent: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.received: Counter[tuple[str, str]] = Counter()
        """(kind, status) -> count: delivery/delivered, display/displayed, …; a status
        RFC 5438 does not define for its kind counts as ``other`` (see :func:`labels`)."""
        self.unmatched = 0

    def expect(self, message_id: str, recipient: str, now: float) -> None:
        self._sent[message_id] = (recipient, now)
        while len(self._sent) > TRACKED:
            gone, (who, _) = self._sent.popitem(last=False)
            log.info("im.receipt.missing", message_id=gone, recipient=who)

    def record(self, notification: Notification, sender: str) -> bool:
        """A receipt came in; False when it is for no message we sent and track."""
        self.received[label(notification)] += 1
        known = self._sent.pop(notification.message_id, None)
        if known is None:
            self.unmatched += 1
        log.info(
            "im.receipt.received",
            message_id=notification.message_id,
            kind=notification.kind,
            status=notification.status,
            sender=sender,
            matched=known is not None,
        )
        return known is not None

    def sweep(self, now: float, older_than: float) -> None:
        """Log and forget the receipts that did not come within ``older_than`` seconds."""
        while self._sent:
            message_id, (recipient, sent) = next(iter(self._sent.items()))
            if now - sent < older_than:
                break
            del self._sent[message_id]
            log.info("im.receipt.missing", message_id=message_id, recipient=recipient)


OTHER = "other"


def labels() -> list[tuple[str, str]]:
    """Every (kind, status) a receipt is counted under: a fixed set, whatever senders write."""
    return [(kind, status) for kind, statuses in STATUSES.items() for status in (*statuses, OTHER)]


def label(notification: Notification) -> tuple[str, str]:
    """What ``notification`` is counted as: the status element's name is the sender's choice,
    so one outside RFC 5438 §7.2.1 is ``other`` (3,000 made-up names are not 3,000 series)."""
    if notification.kind not in STATUSES:
        return OTHER, OTHER
    known = STATUSES[notification.kind]
    return notification.kind, notification.status if notification.status in known else OTHER
