"""The audio stream the bot offers and answers (RFC 3264 §5, §6): G.711 and G.722 (RFC 3551)
with telephone-event (RFC 4733), optionally SRTP keyed with SDES ``a=crypto`` lines (RFC 4568)
and ICE host candidates (RFC 8839)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, replace
from typing import Literal

from bot.sip.errors import SipParseError
from bot.sip.grammar import digits_value
from bot.sip.sdp import Media, SessionDescription

MAX_PTIME = 200
"""Longest packet time taken from an offer's ``a=ptime``, in ms (RFC 4566 §6): G.711 frames
past that would not fit one RTP packet on an Ethernet path."""
TELEPHONE_EVENT = "TELEPHONE-EVENT"  # RFC 4733
SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")  # RFC 4568 §6.2

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


# --- ICE (RFC 8839) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IceParams:
    """Our short-term ICE credentials (RFC 8839 §5.4); the media stream answers the peer's STUN
    checks with them on its host candidate (RFC 8445 §7.3)."""

    ufrag: str
    pwd: str

    @classmethod
    def generate(cls) -> IceParams:
        # RFC 8839 §5.4: ice-ufrag at least 4 and ice-pwd at least 22 ice-chars
        return cls(ufrag=secrets.token_hex(4), pwd=secrets.token_hex(12))

    def attributes(self, host: str, port: int) -> list[tuple[str, str | None]]:
        """``a=ice-ufrag``, ``a=ice-pwd`` and the host candidates of RTP (component 1) and RTCP
        (component 2, port + 1), RFC 8839 §5.1 with the priorities of RFC 8445 §5.1.2.1."""
        candidates = [
            ("candidate", f"1 {component} UDP {_host_priority(component)} {host} "
                          f"{port + component - 1} typ host")
            for component in (1, 2)
        ]  # fmt: skip
        return [("ice-ufrag", self.ufrag), ("ice-pwd", self.pwd), *candidates]


def _host_priority(component: int) -> int:
    # RFC 8445 §5.1.2.1: 2^24 * type preference (126: host) + 2^8 * local preference + 256 - id
    return (126 << 24) + (65535 << 8) + 256 - component


# --- audio offer/answer -----------------------------------------------------------------------

SrtpPolicy = Literal["off", "prefer", "require"]
CODECS: dict[str, tuple[str, int]] = {
    "PCMU": ("0", 8000),
    "PCMA": ("8", 8000),
    "G722": ("9", 16000),
}
"""Codec -> (static payload type, RFC 3551 §6; sample rate). The RTP clock of all three is
8000 Hz: RFC 3551 §4.5.2 keeps G.722's at 8000 although it samples at 16 kHz."""
RTP_CLOCK = 8000
DTMF_PT = "101"
AUDIO_PROTOS = ("RTP/AVP", "RTP/SAVP")
_MIRROR = {"sendonly": "recvonly", "recvonly": "sendonly"}
"""RFC 3264 §6.1: an answer's direction mirrors the offer's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioSession:
    """What an audio offer/answer settled (RFC 3264 §6.1)."""

    remote_address: str
    remote_port: int
    payload_type: int
    codec: str
    """``PCMU``, ``PCMA`` or ``G722``."""
    telephone_event: int | None = None
    local_crypto: Crypto | None = None
    remote_crypto: Crypto | None = None
    ptime: int = 20
    direction: str = "sendrecv"
    """Ours (RFC 3264 §6.1): ``sendrecv`` or ``sendonly`` - we send; ``recvonly`` or
    ``inactive`` - the peer holds the call (§8.4), we keep quiet."""
    sample_rate: int = 8000
    """Of the codec's audio (16000 for G.722); the RTP clock stays 8000."""

    @property
    def sending(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioPolicy:
    """What we can send: codecs in order of preference, DTMF events, SRTP, ICE."""

    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    telephone_event: bool = True
    srtp: SrtpPolicy = "prefer"
    """``off``: plain RTP/AVP only; ``prefer``: offer RTP/AVP with ``a=crypto`` (best-effort
    SRTP, MS-SDPEXT) and take either answer; ``require``: RTP/SAVP only (RFC 4568)."""
    ptime: int = 20
    ice: bool = False
    """Offer ICE host candidates (RFC 8839)."""


def audio_offer(
    policy: AudioPolicy,
    host: str,
    port: int,
    *,
    crypto: Crypto | None = None,
    ice: IceParams | None = None,
    session_id: int | None = None,
) -> SessionDescription:
    """An offer for one sendrecv audio stream on ``host``:``port`` (RFC 3264 §5). With SRTP
    (``policy.srtp`` not off) the stream carries ``crypto`` (a fresh key when None): as
    RTP/SAVP when required, as RTP/AVP when preferred; ``ice`` adds ICE (``a=ice-lite``: we
    answer checks on a host candidate, RFC 8839 §5.3)."""
    formats = [CODECS[c][0] for c in policy.codecs]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{CODECS[c][0]} {c}/{RTP_CLOCK}") for c in policy.codecs
    ]
    if policy.telephone_event:
        formats.append(DTMF_PT)
        attributes += [("rtpmap", f"{DTMF_PT} telephone-event/8000"), ("fmtp", f"{DTMF_PT} 0-16")]
    attributes.append(("ptime", str(policy.ptime)))
    if policy.srtp != "off":
        attributes.append(("crypto", str(crypto or Crypto.generate())))
    if ice is not None:
        attributes += ice.attributes(host, port)
    attributes.append(("sendrecv", None))
    media = Media(
        kind="audio",
        port=port,
        proto="RTP/SAVP" if policy.srtp == "require" else "RTP/AVP",
        formats=tuple(formats),
        attributes=tuple(attributes),
    )
    offer = SessionDescription.of(host, (media,), session_id=session_id)
    return replace(offer, attributes=(("ice-lite", None),)) if ice is not None else offer


def answer_audio(
    offer: SessionDescription,
    address: str,
    port: int,
    policy: AudioPolicy = AudioPolicy(),
    *,
    crypto: Crypto | None = None,
    ice: IceParams | None = None,
    session_id: int | None = None,
) -> tuple[SessionDescription, AudioSession] | None:
    """Answer ``offer`` (RFC 3264 §6): accept the first audio stream we can serve, reject every
    other stream with port 0. None when no stream is acceptable: answer 488. ``crypto``: our
    key to keep (a new offer in the same session, RFC 4568 §7.1.4), else a fresh one."""
    chosen: AudioSession | None = None
    answer_media: list[Media] = []
    for media in offer.media:
        accepted = None if chosen else _accept_audio(offer, media, address, port, policy, crypto)
        if accepted is None:
            answer_media.append(
                Media(
                    kind=media.kind, port=0, proto=media.proto, formats=media.formats[:1] or ("0",)
                )
            )
            continue
        chosen, section = accepted
        if ice is not None:
            section = replace(section, attributes=(*ice.attributes(address, port),
                                                   *section.attributes))  # fmt: skip
        answer_media.append(section)
    if chosen is None:
        return None
    answer = SessionDescription.of(address, tuple(answer_media), session_id=session_id)
    return answer, chosen


def _accept_audio(
    offer: SessionDescription,
    media: Media,
    address: str,
    port: int,
    policy: AudioPolicy,
    crypto: Crypto | None,
) -> tuple[AudioSession, Media] | None:
    proto = media.proto.upper()
    if media.kind != "audio" or media.port == 0 or proto not in AUDIO_PROTOS:
        return None
    # RFC 4568 §7.1.2: no crypto line we can use refuses RTP/SAVP; on RTP/AVP (best-effort SRTP)
    # it leaves the stream plain
    remote_crypto = _usable_crypto(media) if policy.srtp != "off" else None
    secure = proto == "RTP/SAVP"
    if (secure and remote_crypto is None) or (policy.srtp == "require" and not secure):
        return None
    local_crypto = None
    if remote_crypto is not None:
        local_crypto = (
            replace(crypto, tag=remote_crypto.tag, suite=remote_crypto.suite)
            if crypto is not None
            else Crypto.generate(remote_crypto.tag, remote_crypto.suite)
        )
    rtpmap = _rtpmap(media)
    codec_pt = next(
        (
            pt
            for pt in media.formats
            if rtpmap.get(pt, ("", 0))[0] in policy.codecs and rtpmap[pt][1] == RTP_CLOCK
        ),
        None,
    )
    remote_address = offer.media_address(media)
    if codec_pt is None or remote_address is None:
        return None
    codec = rtpmap[codec_pt][0]
    dtmf_pt = _dtmf(media, rtpmap) if policy.telephone_event else None
    formats = [codec_pt] + ([dtmf_pt] if dtmf_pt else [])
    attributes: list[tuple[str, str | None]] = [("rtpmap", f"{codec_pt} {codec}/{RTP_CLOCK}")]
    if dtmf_pt:
        attributes += [("rtpmap", f"{dtmf_pt} telephone-event/8000"), ("fmtp", f"{dtmf_pt} 0-16")]
    ptime = _ptime(media) or policy.ptime
    attributes.append(("ptime", str(ptime)))
    if local_crypto is not None:
        attributes.append(("crypto", str(local_crypto)))
    direction = _MIRROR.get(media.direction, media.direction)
    attributes.append((direction, None))
    session = AudioSession(
        remote_address=remote_address,
        remote_port=media.port,
        payload_type=int(codec_pt),
        codec=codec,
        telephone_event=int(dtmf_pt) if dtmf_pt else None,
        local_crypto=local_crypto,
        remote_crypto=remote_crypto,
        ptime=ptime,
        direction=direction,
        sample_rate=CODECS[codec][1],
    )
    section = Media(
        kind="audio",
        port=port,
        proto=media.proto,
        formats=tuple(formats),
        attributes=tuple(attributes),
    )
    return session, section


def negotiated_audio(offer: SessionDescription, answer: SessionDescription) -> AudioSession:
    """What our ``offer`` and the peer's ``answer`` settled (RFC 3264 §6.1: the streams pair up
    in order): the first accepted audio stream. Raises :class:`SipParseError` with status 488
    and a reason a person can read when the answer is one we cannot use."""
    for index, theirs in enumerate(answer.media):
        if theirs.kind == "audio" and theirs.port != 0 and index < len(offer.media):
            return _settled(offer.media[index], answer, theirs)
    raise SipParseError("the answer accepts no audio stream", status=488)


def _settled(ours: Media, answer: SessionDescription, theirs: Media) -> AudioSession:
    offered, answered = _rtpmap(ours), _rtpmap(theirs)
    pt = next(
        (
            p
            for p in theirs.formats
            if p in ours.formats
            and (answered.get(p) or offered.get(p, ("", 0)))[0] in CODECS
            and (answered.get(p) or offered[p])[1] == RTP_CLOCK
        ),
        None,
    )
    if pt is None:
        ours_names = ", ".join(offered[p][0] for p in ours.formats if p in offered
                               and offered[p][0] in CODECS)  # fmt: skip
        theirs_names = ", ".join(answered.get(p, (p, 0))[0] for p in theirs.formats)
        raise SipParseError(
            f"no codec in common (offered {ours_names}; answered {theirs_names})", status=488
        )
    address = answer.media_address(theirs)
    if address is None:
        raise SipParseError("the answer names no media address (c=)", status=488)
    proto = theirs.proto.upper()
    if proto not in AUDIO_PROTOS:
        raise SipParseError(f"the answer uses {theirs.proto}, not RTP", status=488)
    local_crypto = remote_crypto = None
    mine = {c.tag: c for c in _cryptos(ours)}
    if mine:
        remote_crypto = _usable_crypto(theirs)
    if remote_crypto is not None:
        # RFC 4568 §7.1.3: the answer's tag names the offered crypto line it accepted
        local_crypto = mine.get(remote_crypto.tag)
        if local_crypto is None or local_crypto.suite != remote_crypto.suite:
            raise SipParseError("the answer's a=crypto matches none offered", status=488)
    elif proto == "RTP/SAVP" or ours.proto.upper() == "RTP/SAVP":
        raise SipParseError("the call needs SRTP, the answer has no usable a=crypto", status=488)
    codec = (answered.get(pt) or offered[pt])[0]
    dtmf = _dtmf(theirs, answered)
    return AudioSession(
        remote_address=address,
        remote_port=theirs.port,
        payload_type=int(pt),
        codec=codec,
        telephone_event=int(dtmf) if dtmf else None,
        local_crypto=local_crypto,
        remote_crypto=remote_crypto,
        ptime=_ptime(theirs) or _ptime(ours) or 20,
        direction=_MIRROR.get(theirs.direction, theirs.direction),
        sample_rate=CODECS[codec][1],
    )


def next_version(
    previous: SessionDescription, description: SessionDescription
) -> SessionDescription:
    """``description`` as the next version of ``previous`` (RFC 3264 §8: same ``o=`` session
    id, version + 1)."""
    parts = previous.origin.split()
    if len(parts) >= 3 and parts[2].isdigit():
        parts[2] = str(int(parts[2]) + 1)
    return replace(description, origin=" ".join(parts))


def _rtpmap(media: Media) -> dict[str, tuple[str, int]]:
    """The section's payload types, G.722's static 9 included (RFC 3551 §6)."""
    static = {pt: (name, RTP_CLOCK) for name, (pt, _) in CODECS.items() if pt in media.formats}
    return static | media.rtpmap()


def _dtmf(media: Media, rtpmap: dict[str, tuple[str, int]]) -> str | None:
    return next((pt for pt in media.formats if rtpmap.get(pt, ("", 0))[0] == TELEPHONE_EVENT), None)


def _ptime(media: Media) -> int | None:
    return digits_value(media.attribute("ptime") or "", MAX_PTIME)


def _cryptos(media: Media) -> list[Crypto]:
    out = []
    for value in media.attribute_values("crypto"):
        try:
            out.append(Crypto.parse(value))
        except SipParseError:
            continue
    return out


def _usable_crypto(media: Media) -> Crypto | None:
    """The first ``a=crypto`` with a suite we run and a 30-octet key||salt (RFC 4568 §6.2)."""
    return next((c for c in _cryptos(media) if c.suite in SRTP_SUITES and len(c.key) == 30), None)
