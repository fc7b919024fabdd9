"""Receipts for the bot's messages are counted under a fixed set of labels."""

from __future__ import annotations

from bot.im.imdn import Notification
from bot.im.receipts import ReceiptBook, labels


def test_receipt_labels_are_a_fixed_set_whatever_senders_write() -> None:
    """Issue 15 item 12: the status element's name was the metric's label: 3,000 receipts
    with made-up names made 3,000 series."""
    book = ReceiptBook()
    for n in range(3_000):
        book.record(Notification(message_id=f"m{n}", kind="delivery", status=f"s{n}"), "a@x")
        book.record(Notification(message_id=f"d{n}", kind=f"k{n}", status="displayed"), "a@x")
    book.record(Notification(message_id="ok", kind="display", status="displayed"), "a@x")
    assert book.received == {
        ("delivery", "other"): 3_000,
        ("other", "other"): 3_000,
        ("display", "displayed"): 1,
    }
    assert set(book.received) - set(labels()) == {("other", "other")}
    assert ("delivery", "delivered") in labels() and ("processing", "stored") in labels()
    assert len(labels()) == 14  # RFC 5438 §7.2.1: 4 + 3 + 4 statuses, and "other" for each
