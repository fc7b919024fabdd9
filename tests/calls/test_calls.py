"""The call state machine against a callee on loopback: answered calls, BYE either way, every
failure sentence, CANCEL on timeout, digest, 422, re-INVITE/UPDATE (hold), session timers and
the longest call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from bot.calls.audio import CallFailed
from bot.sip.digest import DigestClient
from bot.sip.sdp import SessionDescription
from bot.sip.sdp_audio import AudioPolicy, audio_offer

from .conftest import WAIT, Callee, FakeStream

MakeBot = Callable[..., Any]


class Tone:
    """A sound double: one second of silence at any rate."""

    def at(self, rate: int) -> NDArray[np.int16]:
        return np.zeros(rate, dtype=np.int16)


async def test_answered_call_plays_and_the_bot_hangs_up(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    call = await bot.calls.call(callee.uri)
    invite = callee.invites[0]
    assert invite.headers.get("supported") == "timer"  # RFC 4028 §7.1
    assert invite.headers.get("session-expires") == "1800;refresher=uac"
    offer = SessionDescription.parse(invite.body).media[0]
    assert offer.proto == "RTP/AVP" and offer.attribute("crypto") is not None  # media.srtp prefer
    await callee.next("ACK")
    stream: FakeStream = bot.streams.opened[0]
    [session] = stream.started
    assert (session.codec, session.remote_port) == ("PCMU", callee.port)
    assert session.remote_crypto is not None  # the callee did SRTP: both keys settled
    assert await call.play(Tone()) == 1.0
    assert len(bot.calls) == 1
    await call.hangup()
    await callee.next("BYE")
    assert call.ended.is_set() and call.end_reason == "the bot hung up."
    assert stream.closed.is_set() and len(bot.calls) == 0


async def test_bye_from_the_callee_ends_the_call(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    call = await bot.calls.call(callee.uri)
    await callee.next("ACK")
    bye = await callee.send("BYE")
    assert bye.status == 200
    await asyncio.wait_for(call.ended.wait(), WAIT)
    assert call.end_reason == f"{callee.uri} hung up."
    await asyncio.wait_for(bot.streams.opened[0].closed.wait(), WAIT)
    assert (await callee.send_stray("BYE")).status == 481  # the dialog is gone


async def test_a_call_that_ends_while_playing_says_so(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    call = await bot.calls.call(callee.uri)
    await callee.next("ACK")
    bot.streams.opened[0].endless = True
    playing = asyncio.ensure_future(call.play(Tone()))
    await asyncio.wait_for(bot.streams.opened[0].playing.wait(), WAIT)
    await callee.send("BYE")
    with pytest.raises(CallFailed, match="ended while playing"):
        await asyncio.wait_for(playing, WAIT)


@pytest.mark.parametrize(
    ("status", "sentence"),
    [
        (603, "{uri} declined the call."),
        (486, "{uri} is busy."),
        (600, "{uri} is busy."),
        (488, "{uri} has no codec in common with the bot (offered PCMU, PCMA)."),
        (606, "{uri} has no codec in common with the bot (offered PCMU, PCMA)."),
        (404, "{uri}: no such user."),
        (480, "{uri} is not available right now."),
        (401, "{uri} wants the bot to sign in, and the bot has no credentials for it."),
        (407, "{uri} wants the bot to sign in, and the bot has no credentials for it."),
        (503, "{uri} cannot be reached (503 Service Unavailable)."),
        (500, "{uri} refused the call (500 Server Internal Error)."),
    ],
)
async def test_every_refusal_is_a_sentence(
    make_bot: MakeBot, callee: Callee, status: int, sentence: str
) -> None:
    bot = await make_bot()
    callee.plan.status = status
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(callee.uri)
    assert str(info.value) == sentence.format(uri=callee.uri)
    assert bot.streams.opened[0].closed.is_set()  # whatever way it ends, the stream is closed
    assert len(bot.calls) == 0 and len(bot.router) == 0


async def test_a_488_to_required_srtp_names_srtp_too(make_bot: MakeBot, callee: Callee) -> None:
    """A phone without SRTP refuses RTP/SAVP with 488 "no common codecs" (baresip 1.0 does):
    the codecs alone would mislead whoever reads the sentence."""
    bot = await make_bot(media={"srtp": "require"})
    callee.plan.status = 488
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(callee.uri)
    assert str(info.value) == (
        f"{callee.uri} has no codec in common with the bot (offered PCMU, PCMA),"
        " or takes no SRTP (media.srtp: require)."
    )


async def test_no_answer_is_cancelled_after_the_answer_timeout(
    make_bot: MakeBot, callee: Callee
) -> None:
    bot = await make_bot(answer_timeout=0.5)
    callee.plan.status = None
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(callee.uri)
    assert str(info.value) == f"{callee.uri} did not answer within 0.5 s."
    cancel = await callee.next("CANCEL")  # RFC 3261 §9.1, answered 487 by the callee
    assert cancel.call_id == callee.invites[0].call_id
    assert bot.streams.opened[0].closed.is_set()


async def test_a_closed_port_is_unreachable(make_bot: MakeBot) -> None:
    bot = await make_bot()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    transport.close()  # nothing listens there now: ICMP port unreachable
    with pytest.raises(CallFailed, match=rf"^sip:dave@127\.0\.0\.1:{port} cannot be reached \("):
        await bot.calls.call(f"sip:dave@127.0.0.1:{port}")


async def test_not_a_sip_address(make_bot: MakeBot) -> None:
    bot = await make_bot()
    with pytest.raises(CallFailed, match="is not a SIP address the bot can call"):
        await bot.calls.call("mailto:x@example.test")
    assert bot.streams.opened == []


async def test_a_challenge_is_answered_with_credentials(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    callee.plan.challenge = True
    call = await bot.calls.call(callee.uri, credentials=DigestClient("bot", "secret"))
    first, second = callee.invites
    assert "authorization" not in first.headers and "authorization" in second.headers
    assert second.cseq.seq == first.cseq.seq + 1 and second.call_id == first.call_id
    await call.hangup()


async def test_wrong_credentials_are_a_sentence(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    callee.plan.challenge = True
    with pytest.raises(CallFailed, match="did not accept the bot's credentials"):
        await bot.calls.call(callee.uri, credentials=DigestClient("bot", "wrong"))


async def test_422_is_retried_once_with_the_min_se(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot(session_expires=90)
    callee.plan.min_se = 600
    call = await bot.calls.call(callee.uri)
    first, second = callee.invites
    assert first.headers.get("session-expires") == "90;refresher=uac"
    assert second.headers.get("session-expires") == "600;refresher=uac"
    assert second.headers.get("min-se") == "600"  # RFC 4028 §7.1
    await call.hangup()


async def test_an_answer_without_a_common_codec_is_hung_up(
    make_bot: MakeBot, callee: Callee
) -> None:
    bot = await make_bot()
    callee.plan.answer = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n"
    )
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(callee.uri)
    assert str(info.value) == (
        f"{callee.uri} answered with audio the bot cannot use"
        " (no codec in common (offered PCMU, PCMA; answered G729))."
    )
    await callee.next("ACK")
    await callee.next("BYE")  # the answer is unusable: ACK, then BYE (RFC 3261 §13.2.2.4)
    assert bot.streams.opened[0].closed.is_set()


async def test_required_srtp_refuses_a_plain_answer(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot(media={"srtp": "require"})
    plain = audio_offer(AudioPolicy(srtp="off"), "127.0.0.1", 40000)
    callee.plan.answer = plain.serialize()
    with pytest.raises(CallFailed) as info:
        await bot.calls.call(callee.uri)
    assert str(info.value) == (
        f"{callee.uri} answered without SRTP, and the bot needs SRTP (media.srtp: require)."
    )
    assert SessionDescription.parse(callee.invites[0].body).media[0].proto == "RTP/SAVP"
    await callee.next("BYE")


async def test_hold_by_re_invite_and_resume_by_update(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    callee.plan.policy = AudioPolicy(srtp="off")
    call = await bot.calls.call(callee.uri)
    await callee.next("ACK")
    stream = bot.streams.opened[0]
    held = audio_offer(AudioPolicy(srtp="off"), "127.0.0.1", 41000).serialize()
    response = await callee.send("INVITE", body=held.replace(b"sendrecv", b"sendonly"))
    assert response.status == 200
    answer = SessionDescription.parse(response.body)
    assert answer.media[0].direction == "recvonly"  # RFC 3264 §8.4
    assert answer.origin.split()[2] == str(int(answer.origin.split()[1]) + 1)  # version + 1
    assert stream.updates[-1].direction == "recvonly" and not stream.updates[-1].sending
    assert stream.updates[-1].remote_port == 41000
    resumed = await callee.send("UPDATE", body=held)
    assert resumed.status == 200 and stream.updates[-1].sending
    refresh = await callee.send("UPDATE")  # no body: a refresh only
    assert refresh.status == 200 and refresh.body == b""
    bad = await callee.send("UPDATE", body=b"v=0\r\n")
    assert bad.status == 488 and not call.ended.is_set()  # nothing changes
    await call.hangup()


async def test_we_refresh_the_session_at_half_the_interval(
    make_bot: MakeBot, callee: Callee
) -> None:
    bot = await make_bot()
    callee.plan.session_expires = "2;refresher=uac"
    call = await bot.calls.call(callee.uri)
    loop = asyncio.get_running_loop()
    answered = loop.time()
    update = await callee.next("UPDATE")  # RFC 4028 §7.4: UPDATE, which the callee allows
    assert loop.time() - answered == pytest.approx(1.0, abs=0.5)
    assert update.headers.get("session-expires") == "2;refresher=uac"
    await callee.next("UPDATE")  # and again, the timer re-armed by the 2xx
    assert not call.ended.is_set()
    await call.hangup()


async def test_re_invite_refresh_when_update_is_not_allowed(
    make_bot: MakeBot, callee: Callee
) -> None:
    bot = await make_bot()
    callee.plan.session_expires = "2;refresher=uac"
    callee.plan.allow = "INVITE, ACK, BYE, CANCEL"
    call = await bot.calls.call(callee.uri)
    await callee.next("ACK")  # the INVITE before it is the first one
    reinvite = await callee.next("INVITE")
    assert reinvite.to.tag is not None and reinvite.body == callee.invites[0].body
    await callee.next("ACK")  # ours, for the refresh's 2xx
    await call.hangup()


async def test_bye_when_the_peer_does_not_refresh(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    callee.plan.session_expires = "3;refresher=uas"
    call = await bot.calls.call(callee.uri)
    await callee.next("BYE")  # RFC 4028 §10: before expiry, by a third of the interval
    assert "did not refresh" in call.end_reason


async def test_a_refresh_from_the_peer_keeps_the_call(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    callee.plan.session_expires = "3;refresher=uas"
    call = await bot.calls.call(callee.uri)
    await callee.next("ACK")
    refreshed = await callee.send("UPDATE", headers={"Session-Expires": "3;refresher=uac"})
    assert refreshed.headers.get("session-expires") == "3;refresher=uac"
    assert not call.ended.is_set()
    await callee.next("BYE")  # 2 s after that refresh: none came
    await call.hangup()


async def test_max_duration_hangs_up(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot(max_duration=0.5)
    call = await bot.calls.call(callee.uri)
    await callee.next("BYE")
    assert call.end_reason == "the call reached calls.max_duration (0.5 s)."
    await asyncio.wait_for(bot.streams.opened[0].closed.wait(), WAIT)


async def test_close_ends_every_call(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    call = await bot.calls.call(callee.uri)
    await bot.calls.close()
    await callee.next("BYE")
    assert call.ended.is_set() and bot.streams.opened[0].closed.is_set()


async def test_lync_calls_offer_g722_first_with_srtp_and_ice(
    make_bot: MakeBot, callee: Callee
) -> None:
    bot = await make_bot(media={"srtp": "off"})
    callee.plan.policy = AudioPolicy(codecs=("G722", "PCMU"))
    call = await bot.calls.call(callee.uri, lync=True)
    offer = SessionDescription.parse(callee.invites[0].body).media[0]
    assert offer.formats[0] == "9" and offer.attribute("crypto") is not None
    assert offer.attribute("ice-ufrag") == "ufrag123"
    assert call.session.codec == "G722" and call.stream.sample_rate == 16000
    await call.hangup()


async def test_generic_invite_carries_the_callers_body(make_bot: MakeBot, callee: Callee) -> None:
    bot = await make_bot()
    callee.plan.answer = b"v=0\r\n"
    session = await bot.calls.invite(
        callee.uri, body=b"<c3p/>", content_type="application/cccp+xml",
        headers=[("X-Test", "1")],
    )  # fmt: skip
    invite = callee.invites[0]
    assert invite.body == b"<c3p/>" and invite.headers.get("x-test") == "1"
    assert session.response is not None and session.response.status == 200
    await session.bye()
    await callee.next("BYE")


async def test_a_peer_without_timer_support_leaves_the_refresh_to_us(
    make_bot: MakeBot, callee: Callee
) -> None:
    """RFC 4028 §9: Session-Expires from a UAC that does not say Supported: timer makes the
    UAS (the bot, here) the refresher, without Require: timer."""
    bot = await make_bot()
    call = await bot.calls.call(callee.uri)
    await callee.next("ACK")
    response = await callee.send("UPDATE", headers={"Session-Expires": "2"})
    assert response.headers.get("session-expires") == "2;refresher=uas"
    assert response.headers.get("require") is None
    await callee.next("UPDATE")  # ours, at half the interval
    await call.hangup()


async def test_a_refresh_answered_481_ends_the_call(make_bot: MakeBot, callee: Callee) -> None:
    """RFC 4028 §10 / RFC 5057 §5.1: the peer has lost the dialog; the bot ends the call."""
    bot = await make_bot()
    callee.plan.session_expires = "2;refresher=uac"
    call = await bot.calls.call(callee.uri)
    await callee.next("ACK")
    callee.dialog = None  # the callee forgets the call: in-dialog requests get 481
    await asyncio.wait_for(call.ended.wait(), WAIT)
    assert call.end_reason == f"{callee.uri} lost the call (a refresh got 481)."
    await asyncio.wait_for(bot.streams.opened[0].closed.wait(), WAIT)


async def test_lync_requests_carry_one_epid_per_bot(make_bot: MakeBot, callee: Callee) -> None:
    """LYNC.md §2.6: pidgin-sipe's ``From: …;tag=…;epid=…`` - one endpoint id for all the
    Lync requests of a bot, none on a standards call."""
    bot, other = await make_bot(), await make_bot()
    await bot.calls.call(callee.uri, lync=True)
    offer = audio_offer(AudioPolicy(), "127.0.0.1", 40000).serialize()
    await bot.calls.invite(callee.uri, body=offer, content_type="application/sdp", lync=True)
    await bot.calls.call(callee.uri)
    epids = [dict(invite.from_.params).get("epid") for invite in callee.invites]
    assert epids == [bot.calls.epid, bot.calls.epid, None]
    assert len(bot.calls.epid) == 10 and bot.calls.epid != other.calls.epid
