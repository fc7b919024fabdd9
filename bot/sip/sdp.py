"""SDP (RFC 4566) and the Lync / Skype for Business IM session the bot holds
(``m=message <port> sip <uri>`` with ``a=accept-types``, MS-SDP), with the offer/answer model
(RFC 3264). The audio stream and its SRTP keys are in :mod:`bot.sip.sdp_audio`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from bot.sip.errors import SipParseError
from bot.sip.grammar import digits_value

MAX_CLOCK_RATE = 1_000_000
"""Highest RTP clock rate read from ``a=rtpmap``, in Hz: far above any audio codec's."""
STATIC_PAYLOADS = {"0": ("PCMU", 8000), "8": ("PCMA", 8000)}  # RFC 3551 §6


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    """One ``m=`` section (RFC 4566 §5.14) with its ``c=`` and ``a=`` lines."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: str | None = None
    """``c=`` value (``IN IP4 192.0.2.1``) when the section has its own."""
    attributes: tuple[tuple[str, str | None], ...] = ()
    other: tuple[str, ...] = ()
    """Lines we do not interpret (``b=``, ``i=``, ``k=``), kept in order."""

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [v for k, v in self.attributes if k == name and v is not None]

    @property
    def direction(self) -> str:
        for key, _ in self.attributes:
            if key in ("sendrecv", "sendonly", "recvonly", "inactive"):
                return key
        return "sendrecv"

    def rtpmap(self) -> dict[str, tuple[str, int]]:
        """Payload type -> (encoding name upper-cased, clock rate), static types included."""
        out = {pt: codec for pt, codec in STATIC_PAYLOADS.items() if pt in self.formats}
        for value in self.attribute_values("rtpmap"):
            pt, _, rest = value.partition(" ")
            name, _, rate = rest.partition("/")
            clock = digits_value(rate.partition("/")[0], MAX_CLOCK_RATE)
            pt = pt.strip()
            # RFC 4566 §6: a=rtpmap:<payload type> <encoding name>/<clock rate>; RTP payload
            # types are 0-127 (RFC 3550 §5.1): anything else names no stream we could play
            if clock is not None and digits_value(pt, 127) is not None:
                out[pt] = (name.strip().upper(), clock)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP body (RFC 4566 §5)."""

    origin: str
    """``o=`` value: ``<username> <sess-id> <sess-version> IN IP4 <address>``."""
    name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    attributes: tuple[tuple[str, str | None], ...] = ()
    media: tuple[Media, ...] = ()
    other: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: bytes | str) -> SessionDescription:
        """Parse an SDP body; errors carry 488 (RFC 3261 §13.3.1.3: offer not acceptable)."""
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
        if not lines or lines[0].strip() != "v=0":
            raise SipParseError("SDP must start with v=0", status=488)
        session = _Section()
        sections: list[_Section] = []
        fields: dict[str, str] = {}
        for line in lines[1:]:
            if len(line) < 2 or line[1] != "=":
                raise SipParseError(f"bad SDP line {line!r}", status=488)
            kind, value = line[0], line[2:].strip()
            target = sections[-1] if sections else session
            if kind == "m":
                sections.append(_Section(media_line=value))
            elif kind == "a":
                name, colon, attr_value = value.partition(":")
                target.attributes.append((name, attr_value if colon else None))
            elif kind == "c":
                target.connection = value
            elif kind in "ost" and not sections:
                fields.setdefault(kind, value)
            else:
                target.other.append(line)
        if "o" not in fields:
            raise SipParseError("SDP without o= line", status=488)
        return cls(
            origin=fields["o"],
            name=fields.get("s", "-"),
            connection=session.connection,
            timing=fields.get("t", "0 0"),
            attributes=tuple(session.attributes),
            media=tuple(section.media() for section in sections),
            other=tuple(session.other),
        )

    @classmethod
    def of(
        cls, address: str, media: tuple[Media, ...], *, session_id: int | None = None
    ) -> SessionDescription:
        """A description of ours: ``o=`` and ``c=`` name ``address`` (RFC 4566 §5.2, §5.7),
        ``session_id`` is also the first version (a random one when None)."""
        sid = session_id if session_id is not None else secrets.randbelow(2**62)
        addrtype = "IP6" if ":" in address else "IP4"
        return cls(
            origin=f"sipbot {sid} {sid} IN {addrtype} {address}",
            connection=f"IN {addrtype} {address}",
            media=media,
        )

    def serialize(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.name}"]
        lines += [o for o in self.other if o[0] in "iuep"]
        if self.connection:
            lines.append(f"c={self.connection}")
        lines += [o for o in self.other if o[0] == "b"]
        lines.append(f"t={self.timing}")
        lines += _attribute_lines(self.attributes)
        for m in self.media:
            lines.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
            lines += [o for o in m.other if o[0] == "i"]
            if m.connection:
                lines.append(f"c={m.connection}")
            lines += [o for o in m.other if o[0] != "i"]
            lines += _attribute_lines(m.attributes)
        return ("\r\n".join(lines) + "\r\n").encode()

    def media_address(self, media: Media) -> str | None:
        """The address the media goes to: the section's ``c=`` or the session's."""
        connection = media.connection or self.connection
        return connection.split()[-1] if connection else None


@dataclass(slots=True)
class _Section:
    """An SDP section being parsed: the session part or one media part."""

    media_line: str = ""
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    def media(self) -> Media:
        parts = self.media_line.split()
        if len(parts) < 3:
            raise SipParseError(f"bad m= line {self.media_line!r}", status=488)
        port = digits_value(parts[1].partition("/")[0], 65535)  # RFC 4566 §5.14
        if port is None:
            raise SipParseError(f"bad media port in {self.media_line!r}", status=488)
        return Media(
            kind=parts[0],
            port=port,
            proto=parts[2],
            formats=tuple(parts[3:]),
            connection=self.connection,
            attributes=tuple(self.attributes),
            other=tuple(self.other),
        )


def _attribute_lines(attributes: tuple[tuple[str, str | None], ...]) -> list[str]:
    return [f"a={k}" if v is None else f"a={k}:{v}" for k, v in attributes]


# --- Lync / Skype for Business IM sessions (MS-SDP, MS-SIPRE) --------------------------------

IM_ACCEPT_TYPES = ("text/plain", "text/html", "text/rtf", "multipart/alternative")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStream:
    """What an IM-session offer/answer settled."""

    accept_types: tuple[str, ...] = field(default=IM_ACCEPT_TYPES)
    remote_uri: str = "null"


def answer_message(
    offer: SessionDescription,
    address: str,
    port: int,
    uri: str,
    accept_types: tuple[str, ...] = IM_ACCEPT_TYPES,
    *,
    session_id: int | None = None,
) -> tuple[SessionDescription, MessageStream] | None:
    """Answer a Lync-style IM offer (``m=message 5060 sip null``, ``a=accept-types:…``) with our
    own ``m=message <port> sip <uri>``; None when the offer holds no message stream (488)."""
    answer_media: list[Media] = []
    session: MessageStream | None = None
    for media in offer.media:
        if session is None and media.kind == "message" and media.port != 0:
            offered = (media.attribute("accept-types") or "text/plain").split()
            common = tuple(t for t in offered if t.lower() in accept_types) or ("text/plain",)
            session = MessageStream(
                accept_types=common, remote_uri=" ".join(media.formats) or "null"
            )
            answer_media.append(
                Media(
                    kind="message",
                    port=port,
                    proto="sip",
                    formats=(uri,),
                    attributes=(("accept-types", " ".join(common)),),
                )
            )
        else:
            answer_media.append(replace(media, port=0, attributes=(), other=()))
    if session is None:
        return None
    answer = SessionDescription.of(address, tuple(answer_media), session_id=session_id)
    return answer, session


def message_offer(
    address: str, port: int, uri: str, accept_types: tuple[str, ...] = IM_ACCEPT_TYPES
) -> SessionDescription:
    """The offer a Lync client makes for an IM session, for the bot inviting a user."""
    media = Media(
        kind="message",
        port=port,
        proto="sip",
        formats=(uri,),
        attributes=(("accept-types", " ".join(accept_types)),),
    )
    return SessionDescription.of(address, (media,))
