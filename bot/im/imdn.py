"""Instant Message Disposition Notification (RFC 5438): reading the receipts clients send for
our messages, and writing the ones a user's message asks for.

Receipts arrive as ``message/imdn+xml`` (usually inside CPIM); the XML comes from the network
and is parsed with defusedxml.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

MEDIA_TYPE = "message/imdn+xml"
XMLNS = "urn:ietf:params:xml:ns:imdn"
# RFC 5438 §5.2: what a sender may ask for in imdn.Disposition-Notification
REQUESTS = frozenset({"positive-delivery", "negative-delivery", "display"})
STATUSES = {
    "delivery": ("delivered", "failed", "forbidden", "error"),
    "display": ("displayed", "forbidden", "error"),
    "processing": ("processed", "stored", "forbidden", "error"),
}
"""RFC 5438 §7.2.1: the statuses each kind of notification may carry."""


class ImdnError(ValueError):
    """Not an IMDN document we can read."""


@dataclass(frozen=True, slots=True)
class Notification:
    message_id: str
    """The imdn.Message-ID of the message this is about."""
    kind: str
    """``delivery``, ``display`` or ``processing``."""
    status: str
    """``delivered``, ``failed``, ``displayed``, ``error``, ``forbidden`` …"""
    recipient: str | None = None


def parse(document: bytes) -> Notification:
    try:
        root = ElementTree.fromstring(document)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise ImdnError(f"not XML: {exc}") from exc
    except (LookupError, ValueError) as exc:
        # the XML declaration names an encoding that expat asks Python's codecs for: unknown
        # (LookupError), bytes-to-bytes (LookupError) or one that fails (UnicodeError)
        raise ImdnError(f"unreadable encoding: {exc}") from exc
    if root.tag != f"{{{XMLNS}}}imdn":
        raise ImdnError(f"not an imdn document: {root.tag}")
    message_id = _text(root, "message-id")
    if not message_id:
        raise ImdnError("no message-id")
    for kind in STATUSES:
        element = root.find(f"{{{XMLNS}}}{kind}-notification")
        if element is None:
            continue
        status = element.find(f"{{{XMLNS}}}status")
        if status is None or len(status) == 0:
            raise ImdnError(f"{kind}-notification without a status")
        return Notification(
            message_id=message_id,
            kind=kind,
            status=status[0].tag.rpartition("}")[2],
            recipient=_text(root, "recipient-uri"),
        )
    raise ImdnError("no notification in the document")


def requested(disposition: str | None) -> frozenset[str]:
    """What an imdn.Disposition-Notification value asks for (unknown values ignored)."""
    if not disposition:
        return frozenset()
    return frozenset(v.strip().lower() for v in disposition.split(",")) & REQUESTS


def build(kind: str, status: str, message_id: str, recipient: str, when: datetime) -> bytes:
    """An IMDN document (RFC 5438 §7.2.1.1 delivery, §7.2.1.2 display)."""
    stamp = when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        f'<imdn xmlns="{XMLNS}">\r\n'
        f"  <message-id>{escape(message_id)}</message-id>\r\n"
        f"  <datetime>{stamp}</datetime>\r\n"
        f"  <recipient-uri>{escape(recipient)}</recipient-uri>\r\n"
        f"  <{kind}-notification><status><{status}/></status></{kind}-notification>\r\n"
        "</imdn>\r\n"
    ).encode()


def _text(root: Element, name: str) -> str | None:
    element = root.find(f"{{{XMLNS}}}{name}")
    return element.text.strip() if element is not None and element.text else None
