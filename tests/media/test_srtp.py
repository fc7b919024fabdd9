"""SRTP/SRTCP (RFC 3711) keyed by SDES cryptos (RFC 4568): round trips, tampering, replay."""

from __future__ import annotations

import pytest

from bot.media import rtcp
from bot.media.rtp import Packetiser
from bot.media.srtp import SrtpPair
from bot.sip.sdp_audio import Crypto


def pairs() -> tuple[SrtpPair, SrtpPair]:
    ours, theirs = Crypto.generate(), Crypto.generate()
    return SrtpPair(ours, theirs), SrtpPair(theirs, ours)


def test_protect_unprotect_round_trip() -> None:
    bot, peer = pairs()
    packetiser = Packetiser(0, 160)
    for _ in range(5):
        rtp = packetiser.next(b"\xff" * 160).to_bytes()
        srtp = bot.protect(rtp)
        assert len(srtp) == len(rtp) + 10  # HMAC-SHA1-80 tag (RFC 3711 §4.2)
        assert srtp[12:172] != rtp[12:]  # the payload is encrypted
        assert peer.unprotect(srtp) == rtp


def test_tampered_replayed_or_foreign_packets_are_dropped() -> None:
    bot, peer = pairs()
    srtp = bot.protect(Packetiser(0, 160).next(b"\x55" * 160).to_bytes())
    tampered = srtp[:20] + bytes([srtp[20] ^ 1]) + srtp[21:]
    assert peer.unprotect(tampered) is None
    assert peer.unprotect(srtp) is not None
    assert peer.unprotect(srtp) is None  # replay (RFC 3711 §3.3.2)
    stranger, _ = pairs()
    assert peer.unprotect(stranger.protect(Packetiser(0, 160).next(b"x").to_bytes())) is None


def test_rtcp_round_trip_and_tamper() -> None:
    bot, peer = pairs()
    report = rtcp.receiver_report(42) + rtcp.sdes_cname(42, "bot@x") + rtcp.bye(42)
    srtcp = bot.protect_rtcp(report)
    assert peer.unprotect_rtcp(srtcp[:-1] + bytes([srtcp[-1] ^ 1])) is None
    assert peer.unprotect_rtcp(srtcp) == report


def test_unsupported_suite_is_refused() -> None:
    with pytest.raises(ValueError, match="F8_128"):
        SrtpPair(Crypto(tag=1, suite="F8_128_HMAC_SHA1_80", key=bytes(30)), Crypto.generate())
