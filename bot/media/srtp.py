"""SRTP and SRTCP (RFC 3711) for streams keyed by SDES ``a=crypto`` (RFC 4568), via libsrtp."""

from __future__ import annotations

from pylibsrtp import Error, Policy, Session

from bot.sip.sdp_audio import Crypto

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
KEY_LENGTH = 30  # 16 octets of master key then 14 of master salt (RFC 4568 §6.2)


def _session(crypto: Crypto, ssrc_type: int) -> Session:
    profile = _PROFILES.get(crypto.suite)
    if profile is None or len(crypto.key) != KEY_LENGTH:
        raise ValueError(f"unsupported SRTP crypto suite {crypto.suite}")
    return Session(Policy(key=crypto.key, ssrc_type=ssrc_type, srtp_profile=profile))


class SrtpPair:
    """Our outbound context (keyed by the crypto we offered) and the peer's inbound one (keyed
    by theirs): RFC 4568 §6.1, each side encrypts with the key it announced."""

    def __init__(self, local: Crypto, remote: Crypto) -> None:
        self._outbound = _session(local, Policy.SSRC_ANY_OUTBOUND)
        self._inbound = _session(remote, Policy.SSRC_ANY_INBOUND)

    def protect(self, rtp: bytes) -> bytes:
        return self._outbound.protect(rtp)

    def unprotect(self, srtp: bytes) -> bytes | None:
        """The RTP packet, or None when it fails authentication or replays (RFC 3711 §3.3)."""
        try:
            return self._inbound.unprotect(srtp)
        except Error:
            return None

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        return self._outbound.protect_rtcp(rtcp)

    def unprotect_rtcp(self, srtcp: bytes) -> bytes | None:
        try:
            return self._inbound.unprotect_rtcp(srtcp)
        except Error:
            return None
