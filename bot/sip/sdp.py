"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for the two sessions the bot holds:
audio (G.711 with telephone-event, optionally SRTP with SDES, RFC 4568) and Lync / Skype for
Business IM sessions (``m=message <port> sip <uri>`` with ``a=accept-types``, MS-SDP)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field, replace

from bot.sip.errors import SipParseError
from bot.sip.grammar import digits_value

MAX_CLOCK_RATE = 1_000_000
"""Highest RTP clock rate read from ``a=rtpmap``, in Hz: far above any audio codec's."""
MAX_PTIME = 200
"""Longest packet time taken from an offer's ``a=ptime``, in ms (RFC 4566 §6): G.711 frames
past that would not fit one RTP packet on an Ethernet path."""


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


STATIC_PAYLOADS = {"0": ("PCMU", 8000), "8": ("PCMA", 8000)}  # RFC 3551 §6
TELEPHONE_EVENT = "TELEPHONE-EVENT"  # RFC 4733
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")  # RFC 4568 §6.2


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


def _origin(address: str, session_id: int | None) -> str:
    sid = session_id if session_id is not None else secrets.randbelow(2**62)
    return f"sipbot {sid} {sid} IN {_addrtype(address)} {address}"


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


# --- SRTP keying (RFC 4568) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Crypto:
    """One ``a=crypto`` line: tag, suite and the inline master key||salt (RFC 4568 §9.1)."""

    tag: int
    suite: str
    key: bytes
    """30 octets: 16 of master key then 14 of master salt (AES_CM_128 suites)."""

    @classmethod
    def parse(cls, value: str) -> Crypto:
        parts = value.split()
        # RFC 4568 §9.1: tag = 1*9DIGIT
        tag = digits_value(parts[0], 999_999_999) if parts else None
        if len(parts) < 3 or tag is None or not parts[2].startswith("inline:"):
            raise SipParseError(f"bad crypto attribute {value!r}", status=488)
        key_text = parts[2][len("inline:") :].split("|")[0]
        try:
            key = base64.b64decode(key_text + "=" * (-len(key_text) % 4), validate=True)
        except ValueError as exc:
            raise SipParseError(f"bad crypto key in {value!r}", status=488) from exc
        return cls(tag=tag, suite=parts[1].upper(), key=key)

    @classmethod
    def generate(cls, tag: int = 1, suite: str = SRTP_SUITES[0]) -> Crypto:
        return cls(tag=tag, suite=suite, key=secrets.token_bytes(30))

    def __str__(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


# --- audio offer/answer -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioSession:
    """What an audio offer/answer settled (RFC 3264 §6.1)."""

    remote_address: str
    remote_port: int
    payload_type: int
    codec: str
    """``PCMU`` or ``PCMA``."""
    telephone_event: int | None = None
    local_crypto: Crypto | None = None
    remote_crypto: Crypto | None = None
    ptime: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioPolicy:
    """What we can send: codecs in order of preference, DTMF events, SRTP."""

    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    telephone_event: bool = True
    srtp: str = "optional"
    """``off`` (RTP/AVP only), ``optional`` (accept either), ``required`` (RTP/SAVP only)."""
    ptime: int = 20


def audio_offer(
    address: str,
    port: int,
    policy: AudioPolicy = AudioPolicy(),
    *,
    crypto: Crypto | None = None,
    session_id: int | None = None,
) -> SessionDescription:
    """An offer for one sendrecv audio stream. With ``crypto`` the stream is RTP/SAVP."""
    codec_pt = {"PCMU": "0", "PCMA": "8"}
    formats = [codec_pt[c] for c in policy.codecs]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{codec_pt[c]} {c}/8000") for c in policy.codecs
    ]
    if policy.telephone_event:
        formats.append("101")
        attributes += [("rtpmap", "101 telephone-event/8000"), ("fmtp", "101 0-16")]
    attributes.append(("ptime", str(policy.ptime)))
    if crypto is not None:
        attributes.append(("crypto", str(crypto)))
    attributes.append(("sendrecv", None))
    media = Media(
        kind="audio",
        port=port,
        proto="RTP/SAVP" if crypto else "RTP/AVP",
        formats=tuple(formats),
        attributes=tuple(attributes),
    )
    return SessionDescription(
        origin=_origin(address, session_id),
        connection=f"IN {_addrtype(address)} {address}",
        media=(media,),
    )


def answer_audio(
    offer: SessionDescription,
    address: str,
    port: int,
    policy: AudioPolicy = AudioPolicy(),
    *,
    session_id: int | None = None,
) -> tuple[SessionDescription, AudioSession] | None:
    """Answer ``offer`` (RFC 3264 §6): accept the first audio stream we can serve, reject every
    other stream with port 0. None when no stream is acceptable: answer 488."""
    chosen: AudioSession | None = None
    answer_media: list[Media] = []
    for media in offer.media:
        accepted = None if chosen else _accept_audio(offer, media, address, port, policy)
        if accepted is None:
            answer_media.append(
                Media(
                    kind=media.kind, port=0, proto=media.proto, formats=media.formats[:1] or ("0",)
                )
            )
            continue
        chosen, section = accepted
        answer_media.append(section)
    if chosen is None:
        return None
    answer = SessionDescription(
        origin=_origin(address, session_id),
        connection=f"IN {_addrtype(address)} {address}",
        media=tuple(answer_media),
    )
    return answer, chosen


def _accept_audio(
    offer: SessionDescription, media: Media, address: str, port: int, policy: AudioPolicy
) -> tuple[AudioSession, Media] | None:
    if media.kind != "audio" or media.port == 0:
        return None
    secure = media.proto.upper() == "RTP/SAVP"
    if media.proto.upper() not in ("RTP/AVP", "RTP/SAVP"):
        return None
    if (secure and policy.srtp == "off") or (not secure and policy.srtp == "required"):
        return None
    remote_crypto = local_crypto = None
    if secure:
        for value in media.attribute_values("crypto"):
            try:
                candidate = Crypto.parse(value)
            except SipParseError:
                continue
            if candidate.suite in SRTP_SUITES and len(candidate.key) == 30:
                remote_crypto = candidate
                break
        if remote_crypto is None:
            return None  # RFC 4568 §7.1.2: no crypto line we can use
        local_crypto = Crypto.generate(remote_crypto.tag, remote_crypto.suite)
    rtpmap = media.rtpmap()
    codec_pt = next(
        (
            pt
            for pt in media.formats
            if rtpmap.get(pt, ("", 0))[0] in policy.codecs and rtpmap[pt][1] == 8000
        ),
        None,
    )
    remote_address = offer.media_address(media)
    if codec_pt is None or remote_address is None:
        return None
    codec = rtpmap[codec_pt][0]
    dtmf_pt = (
        next((pt for pt in media.formats if rtpmap.get(pt, ("", 0))[0] == TELEPHONE_EVENT), None)
        if policy.telephone_event
        else None
    )
    formats = [codec_pt] + ([dtmf_pt] if dtmf_pt else [])
    attributes: list[tuple[str, str | None]] = [("rtpmap", f"{codec_pt} {codec}/8000")]
    if dtmf_pt:
        attributes += [("rtpmap", f"{dtmf_pt} telephone-event/8000"), ("fmtp", f"{dtmf_pt} 0-16")]
    ptime_text = media.attribute("ptime")
    ptime = digits_value(ptime_text or "", MAX_PTIME) or policy.ptime
    attributes.append(("ptime", str(ptime)))
    if local_crypto is not None:
        attributes.append(("crypto", str(local_crypto)))
    # RFC 3264 §6.1: the answer's direction mirrors the offer's
    mirror = {"sendonly": "recvonly", "recvonly": "sendonly"}
    attributes.append((mirror.get(media.direction, media.direction), None))
    session = AudioSession(
        remote_address=remote_address,
        remote_port=media.port,
        payload_type=int(codec_pt),
        codec=codec,
        telephone_event=int(dtmf_pt) if dtmf_pt else None,
        local_crypto=local_crypto,
        remote_crypto=remote_crypto,
        ptime=ptime,
    )
    section = Media(
        kind="audio",
        port=port,
        proto=media.proto,
        formats=tuple(formats),
        attributes=tuple(attributes),
    )
    return session, section


def negotiated_audio(
    offer: SessionDescription, answer: SessionDescription, local_crypto: Crypto | None = None
) -> AudioSession | None:
    """What our offer and the peer's answer settled: the first accepted audio stream."""
    for media in answer.media:
        if media.kind != "audio" or media.port == 0:
            continue
        rtpmap = media.rtpmap()
        pt = next((p for p in media.formats if rtpmap.get(p, ("", 0))[0] in ("PCMU", "PCMA")), None)
        address = answer.media_address(media)
        if pt is None or address is None:
            continue
        dtmf = next(
            (p for p in media.formats if rtpmap.get(p, ("", 0))[0] == TELEPHONE_EVENT), None
        )
        remote = next((Crypto.parse(v) for v in media.attribute_values("crypto")), None)
        return AudioSession(
            remote_address=address,
            remote_port=media.port,
            payload_type=int(pt),
            codec=rtpmap[pt][0],
            telephone_event=int(dtmf) if dtmf else None,
            local_crypto=local_crypto,
            remote_crypto=remote,
        )
    return None


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
    answer = SessionDescription(
        origin=_origin(address, session_id),
        connection=f"IN {_addrtype(address)} {address}",
        media=tuple(answer_media),
    )
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
    return SessionDescription(
        origin=_origin(address, None),
        connection=f"IN {_addrtype(address)} {address}",
        media=(media,),
    )
