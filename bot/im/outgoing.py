"""The bodies the bot sends: replies (plain, or CPIM when the user writes CPIM), receipts
(RFC 5438 IMDN in CPIM), typing notices (RFC 3994 isComposing; Lync <KeyboardActivity>)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.im import cpim, imdn
from bot.sender import Sender
from bot.sip.message import new_tag

TEXT = "text/plain;charset=UTF-8"
IS_COMPOSING = "application/im-iscomposing+xml"
REPLIES_KEPT = 32
"""Plain replies whose payload is kept (each at most a page: bot.commands.replies)."""


@dataclass(frozen=True, slots=True)
class Payload:
    content_type: str
    body: bytes
    method: str = "MESSAGE"
    message_id: str | None = None
    """The imdn.Message-ID we gave it, when we asked for a receipt."""


def reply(text: str, *, in_cpim: bool, bot: str, user: Sender, ask_receipt: bool) -> Payload:
    if not in_cpim:
        return _plain(text)
    message_id = new_tag() + new_tag()
    headers = [("From", f"<{bot}>"), ("To", f"<{user.uri}>"), ("DateTime", _now())]
    headers.append(("imdn.Message-ID", message_id))
    if ask_receipt:
        headers.append(("imdn.Disposition-Notification", "positive-delivery"))
    body = cpim.build(headers, TEXT, text.encode("utf-8"))
    return Payload(cpim.MEDIA_TYPE, body, message_id=message_id if ask_receipt else None)


@functools.lru_cache(maxsize=REPLIES_KEPT)
def _plain(text: str) -> Payload:
    """A plain reply, kept: a function of the text only, immutable, and the same few replies
    (help's first page, an unchanged listing) go out again and again."""
    return Payload(TEXT, text.encode("utf-8"))


def receipt(kind: str, status: str, of_message: str, *, bot: str, user: str) -> Payload:
    """A delivery or display notification for the user's message ``of_message``, in CPIM
    with a Message-ID of its own (RFC 5438 §7.1)."""
    headers = [
        ("From", f"<{bot}>"),
        ("To", f"<{user}>"),
        ("DateTime", _now()),
        ("imdn.Message-ID", new_tag() + new_tag()),
    ]
    document = imdn.build(kind, status, of_message, bot, datetime.now(UTC))
    body = cpim.build(headers, imdn.MEDIA_TYPE, document, Content_Disposition="notification")
    return Payload(cpim.MEDIA_TYPE, body)


def typing(state: str) -> Payload:
    """RFC 3994 §4: ``active`` while composing (refreshed within 60 s), ``idle`` after."""
    refresh = "  <refresh>60</refresh>\r\n" if state == "active" else ""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">\r\n'
        f"  <state>{state}</state>\r\n  <contenttype>text/plain</contenttype>\r\n{refresh}"
        "</isComposing>\r\n"
    )
    return Payload(IS_COMPOSING, body.encode())


def keyboard_activity() -> Payload:
    """What Lync clients send in an IM session while someone types (INFO, MS-SIPRE)."""
    body = b'<?xml version="1.0"?>\r\n<KeyboardActivity><status status="type" /></KeyboardActivity>'
    return Payload("application/xml", body, method="INFO")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
