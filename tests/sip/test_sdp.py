"""SDP parsing and RFC 3264 offer/answer for audio and Lync IM sessions."""

from __future__ import annotations

import pytest

from bot.sip import SipParseError
from bot.sip.sdp import SessionDescription, answer_message, message_offer
from bot.sip.sdp_audio import (
    AudioPolicy,
    Crypto,
    SrtpPolicy,
    answer_audio,
    audio_offer,
    negotiated_audio,
)

BARESIP_OFFER = (
    b"v=0\r\no=- 1866 2541 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10000 RTP/AVP 8 0 101\r\nb=AS:64\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    b"m=video 10002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
)
LYNC_OFFER = (
    b"v=0\r\no=- 0 0 IN IP4 10.1.1.5\r\ns=session\r\nc=IN IP4 10.1.1.5\r\nt=0 0\r\n"
    b"m=message 5060 sip null\r\na=accept-types:text/plain multipart/alternative image/gif "
    b"text/rtf text/html application/x-ms-ink application/ms-imdn+xml text/x-msmsgsinvite\r\n"
)


def test_parse_and_round_trip() -> None:
    sdp = SessionDescription.parse(BARESIP_OFFER)
    assert [m.kind for m in sdp.media] == ["audio", "video"]
    audio = sdp.media[0]
    assert audio.rtpmap()["101"] == ("TELEPHONE-EVENT", 8000)
    assert audio.other == ("b=AS:64",)
    assert SessionDescription.parse(sdp.serialize()) == sdp


def test_answer_keeps_the_offerers_codec_order_and_rejects_other_streams() -> None:
    result = answer_audio(SessionDescription.parse(BARESIP_OFFER), "127.0.0.2", 4000)
    assert result is not None
    answer, session = result
    assert session.codec == "PCMA" and session.payload_type == 8  # offerer prefers PCMA
    assert session.telephone_event == 101
    assert (session.remote_address, session.remote_port) == ("127.0.0.1", 10000)
    assert [m.port for m in answer.media] == [4000, 0]  # RFC 3264 §6: same count, video refused
    assert answer.media[0].formats == ("8", "101")


def test_codec_preference_of_our_policy_limits_the_answer() -> None:
    result = answer_audio(
        SessionDescription.parse(BARESIP_OFFER),
        "127.0.0.2",
        4000,
        AudioPolicy(codecs=("PCMU",), telephone_event=False),
    )
    assert result is not None and result[1].codec == "PCMU" and result[1].telephone_event is None


def test_no_common_codec_means_no_answer() -> None:
    offer = BARESIP_OFFER.replace(b"RTP/AVP 8 0 101", b"RTP/AVP 9").replace(
        b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n", b"a=rtpmap:9 G722/8000\r\n"
    )
    assert answer_audio(SessionDescription.parse(offer), "127.0.0.2", 4000) is None


def test_srtp_offer_answered_with_our_own_key() -> None:
    key = Crypto.generate()
    offer = audio_offer(AudioPolicy(srtp="require"), "127.0.0.1", 5000, crypto=key)
    result = answer_audio(SessionDescription.parse(offer.serialize()), "127.0.0.2", 6000)
    assert result is not None
    answer, session = result
    assert answer.media[0].proto == "RTP/SAVP"
    assert session.remote_crypto == key
    assert session.local_crypto is not None and session.local_crypto.key != key.key
    assert answer.media[0].attribute("crypto") == str(session.local_crypto)


@pytest.mark.parametrize(
    ("srtp", "secure_offer", "accepted"),
    [
        ("require", False, False),
        ("require", True, True),
        ("off", True, False),
        ("prefer", True, True),
        ("prefer", False, True),
    ],
)
def test_srtp_policy(srtp: SrtpPolicy, secure_offer: bool, accepted: bool) -> None:
    offer = audio_offer(AudioPolicy(srtp="require" if secure_offer else "off"), "127.0.0.1", 5000)
    result = answer_audio(offer, "127.0.0.2", 6000, AudioPolicy(srtp=srtp))
    assert (result is not None) == accepted


def test_negotiated_audio_from_our_offer_and_their_answer() -> None:
    offer = audio_offer(AudioPolicy(srtp="off"), "127.0.0.1", 5000)
    result = answer_audio(offer, "127.0.0.9", 7000)
    assert result is not None
    session = negotiated_audio(offer, result[0])
    assert (session.remote_address, session.remote_port) == (
        "127.0.0.9",
        7000,
    )


def test_direction_is_mirrored() -> None:
    offer = SessionDescription.parse(BARESIP_OFFER.replace(b"a=sendrecv", b"a=sendonly"))
    result = answer_audio(offer, "127.0.0.2", 4000)
    assert result is not None and result[0].media[0].direction == "recvonly"


def test_lync_im_offer_is_answered_with_a_message_stream() -> None:
    result = answer_message(
        SessionDescription.parse(LYNC_OFFER), "127.0.0.1", 5060, "sip:bot@example.test"
    )
    assert result is not None
    answer, session = result
    media = answer.media[0]
    assert (media.kind, media.port, media.proto, media.formats) == (
        "message",
        5060,
        "sip",
        ("sip:bot@example.test",),
    )
    assert "text/plain" in (media.attribute("accept-types") or "")
    assert "image/gif" not in session.accept_types
    assert b"m=message 5060 sip sip:bot@example.test\r\n" in answer.serialize()


def test_im_answer_needs_a_message_stream() -> None:
    assert (
        answer_message(SessionDescription.parse(BARESIP_OFFER), "127.0.0.1", 5060, "sip:b@x")
        is None
    )
    offer = message_offer("127.0.0.1", 5060, "sip:bot@example.test")
    assert answer_message(offer, "127.0.0.2", 5060, "sip:alice@example.test") is not None


@pytest.mark.parametrize(
    "body",
    [b"", b"x=1\r\n", b"v=0\r\ns=-\r\n", b"v=0\r\no=- 1 1 IN IP4 a\r\nm=audio x RTP/AVP 0\r\n"],
)
def test_bad_sdp_is_488(body: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        SessionDescription.parse(body).media  # noqa: B018
    assert info.value.status == 488


def test_our_descriptions_name_the_address_in_origin_and_connection() -> None:
    """RFC 4566 §5.2 and §5.7: ``o=`` and ``c=`` carry the address with its type; the session
    id doubles as the first version, for audio and IM alike."""
    audio = SessionDescription.parse(
        audio_offer(AudioPolicy(), "2001:db8::7", 40000, session_id=42).serialize()
    )
    assert audio.origin == "sipbot 42 42 IN IP6 2001:db8::7"
    assert audio.connection == "IN IP6 2001:db8::7"
    im = message_offer("192.0.2.7", 5061, "sip:bot@192.0.2.7")
    sid, version, *rest = im.origin.split()[1:]
    assert sid == version and rest == ["IN", "IP4", "192.0.2.7"]
    assert im.connection == "IN IP4 192.0.2.7"
