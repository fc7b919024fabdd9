"""The audio stream the bot offers and answers (RFC 3264 §5, §6): G.711 (RFC 3551) with
telephone-event (RFC 4733), optionally SRTP keyed with SDES ``a=crypto`` lines (RFC 4568)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

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
    return SessionDescription.of(address, (media,), session_id=session_id)


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
    answer = SessionDescription.of(address, tuple(answer_media), session_id=session_id)
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
