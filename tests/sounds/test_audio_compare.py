"""The end-to-end yardsticks (tests/audio_compare.py) tell a faithful telephone rendering of a
sentence from another sentence and from a burst."""

from __future__ import annotations

import numpy as np
import pytest
import soxr  # type: ignore[import-untyped]
from numpy.typing import NDArray

from bot.config.announcing import SoundsConfig
from bot.sounds import Sound
from bot.sounds.tts import Speaker
from tests.audio_compare import active_length, envelope_correlation

SENTENCE = "The quarterly review moves to room four at three o'clock."
OTHER = "Please remember to submit your expense reports by Friday afternoon."
BIAS, CLIP = 0x84, 32635
"""ITU-T G.711 µ-law: the bias added before the segment search, and the largest magnitude."""


def ulaw_encode(pcm: NDArray[np.int16]) -> NDArray[np.uint8]:
    """ITU-T G.711 µ-law (the segment/mantissa form of the reference C code)."""
    x = pcm.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), CLIP) + BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def ulaw_decode(codes: NDArray[np.uint8]) -> NDArray[np.int16]:
    u = ~codes.astype(np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + BIAS << ((u >> 4) & 0x07)) - BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def test_the_local_ulaw_matches_g711() -> None:
    # G.711 Table 2a: full scale is code 0x80 (+) / 0x00 (-), decoded as ±8031 in 14-bit units
    # (±32124 in 16-bit); zero is 0xFF, and a small negative value is "negative zero" 0x7F
    pcm = np.array([0, -1, 32767, -32768], dtype=np.int16)
    codes = ulaw_encode(pcm)
    assert codes.tolist() == [0xFF, 0x7F, 0x80, 0x00]
    assert ulaw_decode(codes).tolist() == [0, 0, 32124, -32124]
    ramp = np.arange(-32768, 32768, 7, dtype=np.int32).astype(np.int16)
    error = np.abs(ulaw_decode(ulaw_encode(ramp)).astype(np.int32) - ramp)
    assert (error <= np.maximum(np.abs(ramp.astype(np.int32)) // 16, 8) + 1).all()


@pytest.fixture
async def spoken() -> tuple[Sound, Sound]:
    speaker = Speaker(SoundsConfig())
    return await speaker.speak(SENTENCE), await speaker.speak(OTHER)


def telephone(sound: Sound) -> NDArray[np.int16]:
    """What a far end hears: 8 kHz through µ-law, after 0.7 s of line silence."""
    decoded = ulaw_decode(ulaw_encode(sound.at(8000)))
    return np.concatenate([np.zeros(5600, dtype=np.int16), decoded])


async def test_a_telephone_rendering_correlates_and_lasts_as_long(
    spoken: tuple[Sound, Sound],
) -> None:
    reference = spoken[0]
    heard = telephone(reference)
    assert envelope_correlation(reference.samples, reference.rate, heard, 8000) >= 0.9
    expected = active_length(reference.samples, reference.rate)
    assert active_length(heard, 8000) == pytest.approx(expected, rel=0.05)


async def test_another_sentence_does_not_correlate(spoken: tuple[Sound, Sound]) -> None:
    reference, other = spoken
    assert envelope_correlation(reference.samples, reference.rate, telephone(other), 8000) < 0.8


async def test_a_burst_fails_the_length_check(spoken: tuple[Sound, Sound]) -> None:
    reference = spoken[0]
    narrow = reference.at(8000).astype(np.float64)
    burst = soxr.resample(narrow, 3 * 8000, 8000)  # 3x faster: a third of the time
    expected = active_length(reference.samples, reference.rate)
    assert active_length(burst, 8000) < 0.95 * expected
    assert active_length(burst, 8000) == pytest.approx(expected / 3, rel=0.1)


def test_silence_around_a_sound_does_not_count() -> None:
    tone = (10000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.int16)
    padded = np.concatenate([np.zeros(4000, dtype=np.int16), tone, np.zeros(12000, np.int16)])
    assert active_length(padded, 8000) == pytest.approx(1.0, abs=0.01)
    assert active_length(np.zeros(800, dtype=np.int16), 8000) == 0.0
