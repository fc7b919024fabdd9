"""Errors raised by the SIP core.

Like h11, every error says whose fault it was: :class:`SipParseError` is the peer's (it carries
the status to answer with), :class:`ProtocolStateError` is ours (an impossible transition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.sip.message import Message


class SipParseError(ValueError):
    """Bytes from the wire that are not a well-formed SIP message.

    ``status`` is the response a server should send (400, 413, 505…) or ``None`` when the
    message must be dropped silently (RFC 3261 §18.3: framing that cannot be trusted).
    ``partial`` is what could be parsed, enough to build that response (RFC 3261 §8.2.6.2).
    """

    def __init__(self, reason: str, *, status: int | None = 400, partial: Message | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial

    def response_reason(self) -> str:
        """A reason phrase for the error response: the standard phrase and a printable hint."""
        base = {413: "Request Entity Too Large", 505: "Version Not Supported"}
        hint = "".join(ch for ch in self.reason if ch.isprintable())[:80]
        return f"{base.get(self.status or 400, 'Bad Request')} ({hint})"


class ProtocolStateError(RuntimeError):
    """A state machine was asked to do something impossible in its state: a bug of ours."""

    def __init__(self, machine: str, state: str, event: str):
        super().__init__(f"{machine}: event {event!r} is not allowed in state {state!r}")
        self.machine = machine
        self.state = state
        self.event = event
