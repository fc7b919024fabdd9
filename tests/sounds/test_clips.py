"""The clip folder: a name plays a file in the folder, and nothing else can be reached."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bot.sounds import SoundError
from bot.sounds.clips import LISTED, ClipFolder
from tests.sounds.wavfile import tone, wav_bytes

CHIME = wav_bytes(tone(880, 0.5, 8000), 8000)
SECRET = wav_bytes(tone(220, 2.0, 8000), 8000)

UP = os.pardir + os.sep
"""The parent folder, as a clip name that tries to climb out of the clip folder."""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """clips/ with chime, welcome, an alias inside, and traps: a hidden clip, a symlink to a
    WAV outside, a sub-folder, a text file; secret.wav lies beside the folder."""
    clips = tmp_path / "clips"
    (clips / "sub").mkdir(parents=True)
    (clips / "chime.wav").write_bytes(CHIME)
    (clips / "welcome.wav").write_bytes(wav_bytes(tone(440, 1.0, 16000), 16000))
    (clips / "alias.wav").symlink_to("chime.wav")
    (clips / ".hidden.wav").write_bytes(SECRET)
    (clips / "sub" / "inner.wav").write_bytes(SECRET)
    (clips / "notes.txt").write_text("not a clip")
    (tmp_path / "secret.wav").write_bytes(SECRET)
    (clips / "escape.wav").symlink_to(tmp_path / "secret.wav")
    (clips / "up.wav").symlink_to(UP + "secret.wav")
    (clips / "loop.wav").symlink_to("loop.wav")
    (clips / "dir.wav").mkdir()
    return clips


def test_names_lists_the_playable_clips_only(folder: Path) -> None:
    assert ClipFolder(folder).names() == ["alias", "chime", "welcome"]


@pytest.mark.parametrize("name", ["chime", "chime.wav", "alias"])
def test_a_clip_is_played_by_name(folder: Path, name: str) -> None:
    sound = ClipFolder(folder).clip(name)
    assert sound.rate == 8000 and sound.duration == pytest.approx(0.5)


def test_a_folder_reached_through_a_symlink_still_plays(folder: Path, tmp_path: Path) -> None:
    (tmp_path / "linked").symlink_to(folder)
    assert ClipFolder(tmp_path / "linked").clip("chime").duration == pytest.approx(0.5)


@pytest.mark.parametrize(
    "name",
    [
        UP + "secret",
        UP + "secret.wav",
        "..",
        ".hidden",
        "sub/inner",
        "sub\\inner",
        "/etc/passwd",
        str(Path(__file__).resolve()),
        "~/secret",
        "chime\x00",
        "chime ",
        "",
        ".wav",
        "x" * 101,
    ],
)
def test_what_is_not_a_name_is_refused_with_the_listing(folder: Path, name: str) -> None:
    with pytest.raises(SoundError) as caught:
        ClipFolder(folder).clip(name)
    message = str(caught.value)
    assert " is not a clip name: name a clip from the folder (letters, digits, '_', '-' " in message
    assert message.endswith(". Clips here: alias, chime, welcome.")


@pytest.mark.parametrize("name", ["escape", "up", "loop", "dir", "chime2", "notes", "sub"])
def test_a_name_that_leads_nowhere_playable_is_no_clip(folder: Path, name: str) -> None:
    with pytest.raises(SoundError) as caught:
        ClipFolder(folder).clip(name)
    assert str(caught.value) == f"There is no clip '{name}'. Clips here: alias, chime, welcome."


def test_a_missing_folder_says_there_are_no_clips_yet(tmp_path: Path) -> None:
    clips = ClipFolder(tmp_path / "nothing")
    assert clips.names() == []
    with pytest.raises(SoundError) as caught:
        clips.clip("chime")
    assert str(caught.value) == (
        "There is no clip 'chime': there are no clips yet "
        "(WAV files in the folder of setting sounds.clips)."
    )


def test_a_long_listing_is_cut_short(tmp_path: Path) -> None:
    for n in range(LISTED + 5):
        (tmp_path / f"c{n:02}.wav").write_bytes(CHIME)
    with pytest.raises(SoundError) as caught:
        ClipFolder(tmp_path).clip("none")
    assert str(caught.value).endswith(", c19 and 5 more.")


def test_an_unreadable_clip_names_the_clip_not_the_path(folder: Path) -> None:
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(SoundError) as caught:
        ClipFolder(folder).clip("broken")
    assert str(folder) not in str(caught.value)
    assert str(caught.value).startswith("'broken.wav' is a damaged WAV file")


def test_the_samples_are_the_file_s(folder: Path) -> None:
    samples = ClipFolder(folder).clip("chime").samples
    assert np.array_equal(samples, np.round(tone(880, 0.5, 8000) * 32768).astype(np.int16))
