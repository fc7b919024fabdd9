"""The audio offer/answer of the bot's calls (RFC 3264) with SRTP by SDES (RFC 4568), G.722 and
ICE host candidates (RFC 8839): what goes on the wire, and what a peer's answer settles."""

from __future__ import annotations

import pytest

from bot.sip import SipParseError
from bot.sip.sdp import SessionDescription
from bot.sip.sdp_audio import (
    AudioPolicy,
    Crypto,
    IceParams,
    SrtpPolicy,
    answer_audio,
    audio_offer,
    negotiated_audio,
    next_version,
)


def wire(description: SessionDescription) -> SessionDescription:
    """What the peer reads: the description serialized and parsed again."""
    return SessionDescription.parse(description.serialize())


@pytest.mark.parametrize(
    ("srtp", "proto", "keyed"),
    [("off", "RTP/AVP", False), ("prefer", "RTP/AVP", True), ("require", "RTP/SAVP", True)],
)
def test_offer_follows_the_srtp_policy(srtp: SrtpPolicy, proto: str, keyed: bool) -> None:
    offer = wire(audio_offer(AudioPolicy(srtp=srtp), "127.0.0.1", 40000))
    media = offer.media[0]
    assert media.proto == proto
    assert bool(media.attribute_values("crypto")) == keyed
    if keyed:
        assert Crypto.parse(media.attribute_values("crypto")[0]).suite == "AES_CM_128_HMAC_SHA1_80"


def test_g722_is_offered_with_payload_9_and_an_8000_clock() -> None:
    offer = wire(audio_offer(AudioPolicy(codecs=("G722", "PCMU")), "127.0.0.1", 40000))
    media = offer.media[0]
    assert media.formats == ("9", "0", "101")
    assert "9 G722/8000" in media.attribute_values("rtpmap")  # RFC 3551 §4.5.2


def test_ice_offer_carries_credentials_and_host_candidates() -> None:
    ice = IceParams(ufrag="abcd", pwd="0123456789abcdefghijkl")
    offer = wire(audio_offer(AudioPolicy(ice=True), "192.0.2.5", 40000, ice=ice))
    media = offer.media[0]
    assert media.attribute("ice-ufrag") == "abcd"
    assert media.attribute("ice-pwd") == "0123456789abcdefghijkl"
    assert media.attribute_values("candidate") == [
        "1 1 UDP 2130706431 192.0.2.5 40000 typ host",
        "1 2 UDP 2130706430 192.0.2.5 40001 typ host",
    ]
    assert ("ice-lite", None) in offer.attributes
    generated = IceParams.generate()
    assert len(generated.ufrag) >= 4 and len(generated.pwd) >= 22  # RFC 8839 §5.4


def _answer(offer: SessionDescription, **kwargs: object) -> SessionDescription:
    result = answer_audio(wire(offer), "127.0.0.9", 7000, **kwargs)  # type: ignore[arg-type]
    assert result is not None
    return wire(result[0])


def test_prefer_takes_a_plain_answer() -> None:
    offer = audio_offer(AudioPolicy(srtp="prefer"), "127.0.0.1", 40000)
    answer = _answer(offer, policy=AudioPolicy(srtp="off"))
    assert answer.media[0].attribute_values("crypto") == []
    session = negotiated_audio(offer, answer)
    assert session.local_crypto is None and session.remote_crypto is None
    assert (session.remote_address, session.remote_port, session.codec) == (
        "127.0.0.9",
        7000,
        "PCMU",
    )


def test_prefer_takes_an_srtp_answer_and_keys_both_ways() -> None:
    key = Crypto.generate()
    offer = audio_offer(AudioPolicy(srtp="prefer"), "127.0.0.1", 40000, crypto=key)
    answer = _answer(offer)  # best-effort SRTP answered by a peer that does it: RTP/AVP + crypto
    assert answer.media[0].proto == "RTP/AVP"
    session = negotiated_audio(offer, answer)
    assert session.local_crypto == key
    assert session.remote_crypto is not None and session.remote_crypto.key != key.key


def test_require_refuses_a_plain_answer() -> None:
    offer = audio_offer(AudioPolicy(srtp="require"), "127.0.0.1", 40000)
    plain = _answer(audio_offer(AudioPolicy(srtp="off"), "127.0.0.1", 40000))
    with pytest.raises(SipParseError, match="needs SRTP") as info:
        negotiated_audio(offer, plain)
    assert info.value.status == 488


def test_an_answer_keyed_for_another_crypto_line_is_refused() -> None:
    offer = audio_offer(AudioPolicy(srtp="prefer"), "127.0.0.1", 40000, crypto=Crypto.generate(1))
    other = audio_offer(AudioPolicy(srtp="prefer"), "127.0.0.1", 40000, crypto=Crypto.generate(7))
    with pytest.raises(SipParseError, match="matches none offered"):
        negotiated_audio(offer, _answer(other))


def test_no_codec_in_common_names_both_sides() -> None:
    offer = audio_offer(AudioPolicy(codecs=("PCMU",), srtp="off"), "127.0.0.1", 40000)
    answer = SessionDescription.parse(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"
        b"m=audio 7000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
    )
    with pytest.raises(SipParseError) as info:
        negotiated_audio(offer, answer)
    assert info.value.status == 488
    assert str(info.value) == "no codec in common (offered PCMU; answered G729)"


def test_a_refused_stream_settles_nothing() -> None:
    offer = audio_offer(AudioPolicy(srtp="off"), "127.0.0.1", 40000)
    answer = SessionDescription.parse(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"
        b"m=audio 0 RTP/AVP 0\r\n"
    )
    with pytest.raises(SipParseError, match="no audio stream"):
        negotiated_audio(offer, answer)


def test_g722_settles_at_16_khz_on_an_8000_clock() -> None:
    offer = audio_offer(AudioPolicy(codecs=("G722", "PCMA"), srtp="off"), "127.0.0.1", 40000)
    answer = _answer(offer, policy=AudioPolicy(codecs=("G722",)))
    session = negotiated_audio(offer, answer)
    assert (session.codec, session.payload_type, session.sample_rate) == ("G722", 9, 16000)


def test_an_answer_without_rtpmap_for_static_g722_is_understood() -> None:
    offer = SessionDescription.parse(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 7000 RTP/AVP 9\r\n"
    )
    result = answer_audio(offer, "127.0.0.9", 7000, AudioPolicy(codecs=("G722",)))
    assert result is not None and result[1].codec == "G722"


@pytest.mark.parametrize(
    ("theirs", "ours", "sending"),
    [("sendrecv", "sendrecv", True), ("sendonly", "recvonly", False),
     ("inactive", "inactive", False), ("recvonly", "sendonly", True)],
)  # fmt: skip
def test_direction_of_a_held_call(theirs: str, ours: str, sending: bool) -> None:
    """RFC 3264 §8.4: a peer that holds the call answers (or offers) sendonly or inactive."""
    offer = audio_offer(AudioPolicy(srtp="off"), "127.0.0.1", 40000)
    answer = SessionDescription.parse(
        _answer(offer).serialize().replace(b"sendrecv", theirs.encode())
    )
    session = negotiated_audio(offer, answer)
    assert (session.direction, session.sending) == (ours, sending)
    reoffer = wire(audio_offer(AudioPolicy(srtp="off"), "127.0.0.9", 7000))
    held = SessionDescription.parse(reoffer.serialize().replace(b"sendrecv", theirs.encode()))
    result = answer_audio(held, "127.0.0.1", 40000)
    assert result is not None and result[1].direction == ours


def test_a_new_offer_is_answered_with_the_same_key_and_the_next_version() -> None:
    key = Crypto.generate()
    first = audio_offer(AudioPolicy(srtp="off"), "127.0.0.1", 40000, session_id=5)
    peer_offer = audio_offer(AudioPolicy(srtp="require"), "127.0.0.9", 7000)
    result = answer_audio(wire(peer_offer), "127.0.0.1", 40000, crypto=key)
    assert result is not None
    assert result[1].local_crypto is not None and result[1].local_crypto.key == key.key
    again = next_version(first, result[0])
    assert again.origin == "sipbot 5 6 IN IP4 127.0.0.1"  # RFC 3264 §8: version + 1


def test_ice_in_the_answer() -> None:
    ice = IceParams.generate()
    offer = audio_offer(AudioPolicy(ice=True), "127.0.0.1", 40000, ice=IceParams.generate())
    answer = _answer(offer, ice=ice)
    assert answer.media[0].attribute("ice-ufrag") == ice.ufrag
    assert negotiated_audio(offer, answer).codec == "PCMU"
