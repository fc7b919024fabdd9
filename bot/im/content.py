"""What an incoming IM body is: a person's text, a typing notice, a receipt - undoing
Content-Encoding (RFC 3261 §20.12) and CPIM (RFC 3862) on the way, and noting the receipts
the sender asks for (RFC 5438)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.im import cpim, imdn
from bot.im.bodies import ContentType, UnsupportedBody, content_type_of, text_in
from bot.im.encoding import decode

TYPING = frozenset({"application/im-iscomposing+xml"})


@dataclass(frozen=True, slots=True)
class ImContent:
    kind: str
    """``text`` (a person's words), ``typing``, ``receipt`` or ``other`` (nothing to act on)."""
    text: str | None = None
    message_id: str | None = None
    """The sender's imdn.Message-ID, when it gave one."""
    wants: frozenset[str] = frozenset()
    """Receipts the sender asks for (positive-delivery, display, negative-delivery)."""
    receipt: imdn.Notification | None = None
    in_cpim: bool = False
    """It came wrapped in CPIM: the sender reads CPIM, so receipts go back in CPIM."""


def read(content_type: str | None, encodings: list[str], body: bytes) -> ImContent:
    """Raises UnsupportedBody (415), encoding.BadEncoding (415) or BodyTooLarge (413)."""
    if encodings:
        body = decode(body, encodings)
    kind = content_type_of(content_type)
    if kind.media != cpim.MEDIA_TYPE:
        return _classify(kind, body)
    try:
        wrapped = cpim.parse(body)
    except cpim.CpimError as exc:
        raise UnsupportedBody(f"message/cpim: {exc}") from exc
    inner_encodings = [v for k, v in wrapped.content_headers if k.lower() == "content-encoding"]
    inner = _classify(
        ContentType.parse(wrapped.content_type), decode(wrapped.content, inner_encodings)
    )
    return ImContent(
        kind=inner.kind,
        text=inner.text,
        message_id=wrapped.imdn("Message-ID"),
        wants=imdn.requested(wrapped.imdn("Disposition-Notification")),
        receipt=inner.receipt,
        in_cpim=True,
    )


def _classify(kind: ContentType, body: bytes) -> ImContent:
    if kind.media in TYPING:
        return ImContent("typing")
    if kind.media == imdn.MEDIA_TYPE:
        try:
            return ImContent("receipt", receipt=imdn.parse(body))
        except imdn.ImdnError:
            return ImContent("other")
    text = text_in(kind, body)
    return ImContent("text", text) if text is not None else ImContent("other")
