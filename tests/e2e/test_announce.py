"""Issue 17, end to end: ``sipbot run`` calls bob's real softphone (baresip, auto-answering and
recording what it hears), speaks or plays, hangs up, and tells alice.

What bob heard is compared with espeak-ng's own rendering of the sentence, at the voice and speed
of the bot's settings, resampled to 8 kHz (G.711 is band-limited like what the phone hears):
active length within 5 %, energy-envelope correlation at least 0.8 (tests/audio_compare.py), and
the call lasted at least as long as the speech (paced in real time, not sent as a burst).
"""

from __future__ import annotations

import asyncio
import re
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soxr  # type: ignore[import-untyped]
from numpy.typing import NDArray

from bot.config import Config, load_config
from tests.audio_compare import active_length, envelope_correlation
from tests.peers.baresip import RecordingPhone
from tests.peers.conftest import require

from .conftest import RunningBot, StartBot, alice_says

BOB = "sip:bob@example.test"
SENTENCE = "The quarterly review starts in five minutes."
RATE = 8000
"""G.711's rate: what bob's phone hears and records."""


def read_wav(path: Path) -> tuple[NDArray[np.int16], int]:
    """16-bit PCM samples (first channel) and rate of the WAV file ``path``."""
    with wave.open(str(path)) as wav:
        assert wav.getsampwidth() == 2, path
        frames = wav.readframes(wav.getnframes())
        samples = np.frombuffer(frames, dtype="<i2").reshape(-1, wav.getnchannels())[:, 0]
        return samples, wav.getframerate()


async def run(*argv: str) -> None:
    """Run a program to completion; an assertion naming it when it fails."""
    proc = await asyncio.create_subprocess_exec(
        require(argv[0]), *argv[1:], stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, f"{argv}: {out.decode(errors='replace')}"


async def espeak(text: str, config: Config, path: Path) -> Path:
    """espeak-ng's own rendering of ``text`` (22.05 kHz, 16-bit mono) with the voice and speed
    of the bot's settings, written to ``path``."""
    sounds = config.sounds
    await run("espeak-ng", "-v", sounds.voice, "-s", str(sounds.speed), "-w", str(path), text)
    return path


def at_codec_rate(path: Path) -> NDArray[np.float64]:
    """The WAV file ``path`` resampled to 8 kHz."""
    samples, rate = read_wav(path)
    resampled: NDArray[np.float64] = soxr.resample(samples.astype(np.float64), rate, RATE)
    return resampled


def save_as_cd_audio(source: Path, path: Path) -> None:
    """``source`` saved as an editor saves a clip: 44.1 kHz 16-bit stereo (the bot resamples
    and mixes it down), the right channel a little quieter than the left."""
    samples, rate = read_wav(source)
    left = soxr.resample(samples.astype(np.float64), rate, 44100)
    stereo = np.stack([left, left * 0.5], axis=1).round().clip(-32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(stereo.tobytes())


def when(line: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(line["timestamp"]))


async def bob_phone(folder: Path, registrar: tuple[str, int], **options: str) -> RecordingPhone:
    return await RecordingPhone.start(
        folder, user="bob", password="bob-demo", registrar=registrar, **options
    )


async def heard_as_spoken(
    bot: RunningBot, phone: RecordingPhone, reference: Path, *, mark: int
) -> dict[str, object]:
    """Bob's one recording since the call that started after log line ``mark`` matches
    ``reference``, the call lasted at least as long as the speech, and the bot hung up (its BYE
    answered 200); the bot's ``calls.started`` line."""
    await phone.call_closed()
    started = await bot.event("calls.started", after=mark)
    ended = await bot.event("calls.ended", after=mark, call_id=started["call_id"])
    await bot.event("calls.bye_answered", after=mark, call_id=started["call_id"], status=200)
    await phone.close()  # the recording's WAV header is complete once baresip is done with it
    (recording,) = phone.heard()
    heard, rate = read_wav(recording)
    assert rate == RATE
    expected = at_codec_rate(reference)
    speech = active_length(expected, RATE)
    sounding = active_length(heard, RATE)
    assert abs(sounding - speech) <= 0.05 * speech, (sounding, speech)
    assert envelope_correlation(heard, RATE, expected, RATE) >= 0.8
    # paced in real time: the call (bot's log, baresip's count) and the recording last at
    # least as long as the speech. A burst is over in milliseconds (tried: 4 ms), though
    # baresip's jitter buffer may still record it whole: the audio alone cannot tell
    assert (when(ended) - when(started)).total_seconds() >= speech
    assert len(heard) / RATE >= speech
    durations = re.findall(r"terminated \(duration: (\d+) secs?\)", phone.log)
    assert durations and int(durations[-1]) >= int(speech), phone.log
    return started


async def test_announce_to_bob_is_heard_as_espeak_says_it(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot()
    config = load_config(bot.config_path)
    reference = await espeak(SENTENCE, config, tmp_path / "reference.wav")
    phone = await bob_phone(tmp_path / "bob", ("127.0.0.1", bot.port))
    try:
        mark = len(bot.lines)
        reply = await alice_says(config, f"announce {BOB} {SENTENCE}", timeout=30)
        assert re.fullmatch(rf"Announced to {BOB} \(\d+\.\d s\)\.", reply), reply
        started = await heard_as_spoken(bot, phone, reference, mark=mark)
        assert started["codec"] == "PCMU"
    finally:
        await phone.close()


async def test_play_a_clip_to_bob_resampled_and_mixed_down(
    start_bot: StartBot, tmp_path: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    bot = await start_bot(sounds={"clips": str(clips)})
    config = load_config(bot.config_path)
    reference = await espeak("Please join the review now.", config, tmp_path / "reference.wav")
    save_as_cd_audio(reference, clips / "join.wav")
    phone = await bob_phone(tmp_path / "bob", ("127.0.0.1", bot.port))
    try:
        mark = len(bot.lines)
        reply = await alice_says(config, f"play {BOB} join", timeout=30)
        assert re.fullmatch(rf"Played 'join' to {BOB} \(\d+\.\d s\)\.", reply), reply
        await heard_as_spoken(bot, phone, reference, mark=mark)
    finally:
        await phone.close()


@pytest.mark.parametrize(
    ("srtp", "mediaenc"),
    [("require", "srtp-mand"), ("prefer", "srtp")],
    ids=["require-RTP/SAVP", "prefer-RTP/AVP-with-crypto"],
)
async def test_announce_over_srtp_is_encrypted_and_heard(
    start_bot: StartBot, tmp_path: Path, srtp: str, mediaenc: str
) -> None:
    bot = await start_bot(media={"srtp": srtp})
    config = load_config(bot.config_path)
    sentence = "Encrypted hello."
    reference = await espeak(sentence, config, tmp_path / "reference.wav")
    phone = await bob_phone(tmp_path / "bob", ("127.0.0.1", bot.port), mediaenc=mediaenc)
    try:
        mark = len(bot.lines)
        reply = await alice_says(config, f"announce {BOB} {sentence}", timeout=30)
        assert reply.startswith(f"Announced to {BOB} "), reply
        started = await heard_as_spoken(bot, phone, reference, mark=mark)
        assert started["srtp"] is True
        assert "srtp: audio: SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)" in phone.log
    finally:
        await phone.close()


async def test_bob_not_registered_alice_is_told_and_the_bot_carries_on(
    start_bot: StartBot,
) -> None:
    bot = await start_bot()
    config = load_config(bot.config_path)
    reply = await alice_says(config, f"announce {BOB} Hello.", timeout=30)
    assert reply == f"{BOB} is not available right now (not signed in).", reply
    assert "Commands" in await alice_says(config, "help")  # and no traceback (fixture)


async def test_bob_busy_or_not_answering_alice_is_told(start_bot: StartBot, tmp_path: Path) -> None:
    bot = await start_bot(calls={"answer_timeout": 1.0})
    config = load_config(bot.config_path)
    phone = await bob_phone(tmp_path / "bob", ("127.0.0.1", bot.port), answermode="manual")
    try:
        async with phone.busy():
            reply = await alice_says(config, f"announce {BOB} Hello.", timeout=30)
        assert reply == f"{BOB} is busy.", reply
        assert "(486 " in phone.log
        # nobody picks up: the bot gives up (CANCEL) after calls.answer_timeout
        reply = await alice_says(config, f"announce {BOB} Hello.", timeout=30)
        assert reply == f"{BOB} did not answer within 1 s.", reply
        await phone.call_closed()
        assert "session closed: Connection reset by peer" in phone.log  # the CANCEL
    finally:
        await phone.close()
    assert phone.heard() == []


async def test_srtp_required_and_bobs_phone_has_none_alice_is_told(
    start_bot: StartBot, tmp_path: Path
) -> None:
    bot = await start_bot(media={"srtp": "require"})
    config = load_config(bot.config_path)
    phone = await bob_phone(tmp_path / "bob", ("127.0.0.1", bot.port))  # no mediaenc
    try:
        reply = await alice_says(config, f"announce {BOB} Hello.", timeout=30)
    finally:
        await phone.close()
    assert reply == (
        f"{BOB} has no codec in common with the bot (offered PCMU, PCMA),"
        " or takes no SRTP (media.srtp: require)."
    )
