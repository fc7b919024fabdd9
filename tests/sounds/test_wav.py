"""Reading WAV files of every shape a clip may come in (generated here, into tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from bot.sounds import SoundError
from bot.sounds.wav import parse_wav, read_wav
from tests.sounds.wavfile import tone, wav_bytes

FORMATS: list[tuple[Literal["pcm", "float"], int, bool]] = [
    ("pcm", 8, False),
    ("pcm", 16, False),
    ("pcm", 24, False),
    ("pcm", 32, False),
    ("float", 32, False),
    ("float", 64, False),
    ("pcm", 16, True),
    ("pcm", 24, True),
    ("pcm", 32, True),
    ("float", 32, True),
]


@pytest.mark.parametrize(("kind", "bits", "extensible"), FORMATS)
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_every_format_and_channel_count_reads_as_the_mono_mix(
    tmp_path: Path,
    kind: Literal["pcm", "float"],
    bits: int,
    extensible: bool,
    channels: int,
) -> None:
    # channel k carries the tone at (k + 1) / channels of the amplitude: the mix is their mean
    base = tone(440, 0.25, 16000, amplitude=0.8)
    frames = np.stack([base * (k + 1) / channels for k in range(channels)], axis=1)
    path = tmp_path / "clip.wav"
    path.write_bytes(wav_bytes(frames, 16000, kind=kind, bits=bits, extensible=extensible))

    sound = read_wav(path)

    expected = frames.mean(axis=1) * 32768
    assert sound.rate == 16000
    assert len(sound.samples) == len(base)
    quantum = 256 if bits == 8 else 1  # 8-bit keeps 1/256 of the 16-bit resolution
    assert np.abs(sound.samples - expected).max() <= quantum + 1
    assert np.abs(sound.samples).max() > 0.8 * 32768 * (channels + 1) / (2 * channels) - quantum


def test_44k1_stereo_24_bit_at_8k_mono_keeps_duration_and_pitch(tmp_path: Path) -> None:
    frames = np.stack([tone(440, 2.0, 44100), tone(440, 2.0, 44100)], axis=1)
    path = tmp_path / "stereo.wav"
    path.write_bytes(wav_bytes(frames, 44100, bits=24))

    sound = read_wav(path)
    narrow = sound.at(8000)

    assert sound.duration == pytest.approx(2.0)
    assert len(narrow) / 8000 == pytest.approx(2.0, abs=0.001)
    spectrum = np.abs(np.fft.rfft(narrow.astype(np.float64)))
    dominant = np.fft.rfftfreq(len(narrow), 1 / 8000)[spectrum.argmax()]
    assert dominant == pytest.approx(440, abs=1)
    assert np.abs(narrow).max() == pytest.approx(0.5 * 32768, rel=0.02)  # no loss, no gain


def test_a_streamed_file_declaring_more_data_than_it_holds_reads_what_is_there() -> None:
    # espeak-ng --stdout cannot know the size when it writes the header: it declares 0x7ffff000
    samples = tone(300, 0.5, 22050)
    sound = parse_wav(wav_bytes(samples, 22050, data_size=0x7FFFF000), "stream")
    assert len(sound.samples) == len(samples)


def test_a_float_file_past_full_scale_is_clipped_not_wrapped() -> None:
    loud = np.array([1.5, -1.5, 0.25])
    sound = parse_wav(wav_bytes(loud, 8000, kind="float", bits=32), "loud.wav")
    assert sound.samples.tolist() == [32767, -32768, 8192]


def test_a_partial_last_frame_is_dropped() -> None:
    data = wav_bytes(np.zeros((3, 2)), 8000, bits=16)
    sound = parse_wav(data[:-2], "cut.wav")  # half of the last stereo frame is missing
    assert len(sound.samples) == 2


def refused(data: bytes) -> str:
    with pytest.raises(SoundError) as caught:
        parse_wav(data, "bad.wav")
    return str(caught.value)


def test_what_is_not_a_wav_file_is_refused_with_a_sentence() -> None:
    assert refused(b"ID3\x04 an mp3 file") == (
        "'bad.wav' is not a WAV file: save it as 16-bit PCM WAV and try again."
    )


def test_a_format_the_bot_cannot_play_is_refused() -> None:
    alaw = wav_bytes(tone(440, 0.1, 8000), 8000, bits=8, tag=0x0006)
    assert "'bad.wav' is a WAV file in a format the bot cannot play" in refused(alaw)


def with_format(data: bytes, *, block: int, bits: int) -> bytes:
    """``data`` with its fmt chunk's block size and bits per sample replaced."""
    edited = bytearray(data)
    at = edited.index(b"fmt ") + 8
    edited[at + 12 : at + 16] = block.to_bytes(2, "little") + bits.to_bytes(2, "little")
    return bytes(edited)


def test_12_bit_samples_in_16_bit_words_are_read_as_16_bit() -> None:
    # WAVE: "the sample data is left-justified", the low bits are zero
    data = with_format(wav_bytes(np.array([0.5, -0.25]), 8000, bits=16), block=2, bits=12)
    assert parse_wav(data, "12bit.wav").samples.tolist() == [16384, -8192]


@pytest.mark.parametrize(
    ("kind", "block", "bits"),
    [("float", 2, 16), ("pcm", 6, 48), ("pcm", 2, 24)],
    ids=["16-bit-float", "48-bit-pcm", "24-bits-in-2-bytes"],
)
def test_sample_widths_the_bot_cannot_play_are_refused(
    kind: Literal["pcm", "float"], block: int, bits: int
) -> None:
    data = wav_bytes(np.zeros(12), 8000, kind=kind, bits=32 if kind == "float" else 16)
    message = refused(with_format(data, block=block, bits=bits))
    assert message == (
        f"'bad.wav' has {bits}-bit samples the bot cannot play (it plays 8, 16, 24 and 32-bit "
        "PCM and 32-bit float): save it as 16-bit PCM WAV and try again."
    )


def test_nonsense_channels_or_rate_are_refused() -> None:
    data = bytearray(wav_bytes(tone(440, 0.1, 8000), 8000))
    at = data.index(b"fmt ") + 8
    data[at + 2 : at + 4] = (0).to_bytes(2, "little")
    assert "says it has 0 channels at 8000 Hz" in refused(bytes(data))
    data[at + 2 : at + 4] = (1).to_bytes(2, "little")
    data[at + 4 : at + 8] = (7).to_bytes(4, "little")
    assert "says it has 1 channels at 7 Hz" in refused(bytes(data))


def test_a_file_without_sound_is_refused() -> None:
    assert refused(wav_bytes(np.zeros(0), 8000)) == "'bad.wav' holds no sound: record it again."
    without_data = wav_bytes(np.zeros(4), 8000).split(b"data")[0]
    assert "damaged WAV file (no sound data chunk)" in refused(without_data)


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    path.write_bytes(wav_bytes(tone(440, 1.0, 48000), 48000))  # 96 kB of samples
    assert len(read_wav(path, limit=200_000).samples) == 48000
    with pytest.raises(SoundError) as caught:
        read_wav(path, limit=64 * 1024)
    assert str(caught.value) == (
        "'long.wav' is larger than 0.0625 MiB: shorten it or save it at a lower rate "
        "(8 kHz mono is enough for a call)."
    )


def test_a_missing_file_is_a_sentence_naming_the_file_not_the_folder(tmp_path: Path) -> None:
    with pytest.raises(SoundError) as caught:
        read_wav(tmp_path / "gone.wav")
    assert str(caught.value) == "There is no file 'gone.wav'."
