"""Sound: padding with silence, resampling, and samples nobody can change under a sharer."""

from __future__ import annotations

import numpy as np
import pytest

from bot.sounds import Sound
from tests.sounds.wavfile import tone


def test_padded_adds_silence_before_and_after() -> None:
    sound = Sound(np.full(800, 1000, dtype=np.int16), 8000)
    padded = sound.padded(0.3, 0.5)
    assert padded.duration == pytest.approx(0.1 + 0.3 + 0.5)
    assert padded.rate == 8000
    assert not padded.samples[:2400].any() and not padded.samples[-4000:].any()
    assert (padded.samples[2400:3200] == 1000).all()


def test_at_its_own_rate_is_the_samples_themselves() -> None:
    sound = Sound(np.arange(10, dtype=np.int16), 16000)
    assert sound.at(16000) is sound.samples


def test_at_16k_from_8k_keeps_duration_and_pitch() -> None:
    sound = Sound(np.round(tone(1000, 1.0, 8000) * 32767).astype(np.int16), 8000)
    wide = sound.at(16000)
    assert wide.dtype == np.int16 and len(wide) == 16000
    spectrum = np.abs(np.fft.rfft(wide.astype(np.float64)))
    assert np.fft.rfftfreq(len(wide), 1 / 16000)[spectrum.argmax()] == pytest.approx(1000, abs=1)


def test_samples_are_read_only_so_a_cached_sound_stays_as_rendered() -> None:
    sound = Sound(np.zeros(4, dtype=np.int16), 8000)
    with pytest.raises(ValueError):
        sound.samples[0] = 1


@pytest.mark.parametrize(
    ("samples", "rate"),
    [(np.zeros(4, dtype=np.float32), 8000), (np.zeros((4, 2), dtype=np.int16), 8000)],
    ids=["float", "stereo"],
)
def test_only_mono_int16_makes_a_sound(samples: np.ndarray, rate: int) -> None:
    with pytest.raises(ValueError):
        Sound(samples, rate)


def test_a_rate_is_positive() -> None:
    with pytest.raises(ValueError):
        Sound(np.zeros(4, dtype=np.int16), 0)
