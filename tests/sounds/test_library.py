"""Sounds: what commands and rules ask for, with the configured silence around it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bot.config.announcing import SoundsConfig
from bot.sounds import SoundError, Sounds
from bot.sounds.tts import Speaker
from tests.audio_compare import active_length
from tests.sounds.wavfile import tone, wav_bytes

SENTENCE = "Ten minutes left."


def write_clip(folder: Path, name: str, seconds: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.wav").write_bytes(wav_bytes(tone(660, seconds, 8000), 8000))


async def test_a_clip_comes_with_lead_and_trail_silence(tmp_path: Path) -> None:
    write_clip(tmp_path / "mine", "chime", 1.0)
    settings = SoundsConfig(clips=tmp_path / "mine", lead_silence=0.25, trail_silence=0.75)
    sound = await Sounds(settings, tmp_path).clip("chime")
    assert sound.duration == pytest.approx(2.0)
    assert not sound.samples[:2000].any() and not sound.samples[-6000:].any()
    assert active_length(sound.samples, sound.rate) == pytest.approx(1.0, abs=0.02)


async def test_speech_comes_with_lead_and_trail_silence(tmp_path: Path) -> None:
    plain = await Speaker(SoundsConfig()).speak(SENTENCE)
    settings = SoundsConfig(lead_silence=0.5, trail_silence=1.0)
    sound = await Sounds(settings, tmp_path).speech(SENTENCE)
    assert sound.duration == pytest.approx(plain.duration + 1.5, abs=1e-4)
    lead = round(0.5 * sound.rate)
    assert np.array_equal(sound.samples[lead : lead + len(plain.samples)], plain.samples)


async def test_the_clips_folder_defaults_to_clips_in_the_data_dir(tmp_path: Path) -> None:
    write_clip(tmp_path / "clips", "welcome", 0.5)
    sounds = Sounds(SoundsConfig(lead_silence=0, trail_silence=0), tmp_path)
    assert sounds.clips.names() == ["welcome"]
    assert (await sounds.clip("welcome")).duration == pytest.approx(0.5)


def test_without_a_data_dir_the_default_data_dir_is_used() -> None:
    # conftest points $XDG_DATA_HOME into the session's temporary directory
    expected = Path(os.environ["XDG_DATA_HOME"]) / "sipbot" / "clips"
    assert Sounds(SoundsConfig(), None).clips.path == expected


async def test_reconfigure_changes_the_folder_and_the_silence(tmp_path: Path) -> None:
    write_clip(tmp_path / "old", "chime", 0.5)
    write_clip(tmp_path / "new", "gong", 0.5)
    sounds = Sounds(SoundsConfig(clips=tmp_path / "old"), tmp_path)
    sounds.reconfigure(SoundsConfig(clips=tmp_path / "new", lead_silence=0, trail_silence=1))
    assert (await sounds.clip("gong")).duration == pytest.approx(1.5)
    with pytest.raises(SoundError) as caught:
        await sounds.clip("chime")
    assert str(caught.value) == "There is no clip 'chime'. Clips here: gong."


async def test_reconfigure_changes_the_voice(tmp_path: Path) -> None:
    sounds = Sounds(SoundsConfig(), tmp_path)
    await sounds.speech(SENTENCE)
    sounds.reconfigure(SoundsConfig(voice="xx-nosuch"))
    with pytest.raises(SoundError, match="sounds.voice"):
        await sounds.speech(SENTENCE)
