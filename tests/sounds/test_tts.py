"""Text to speech with the real espeak-ng (Debian espeak-ng), counted through a wrapper script
that notes each spawn's process id before it execs espeak-ng."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.config.announcing import SoundsConfig
from bot.sounds import SoundError
from bot.sounds.tts import MAX_TEXT, Speaker
from tests.audio_compare import active_length

SENTENCE = "The quarterly review starts in five minutes."
LONG = ("The quarterly review moves to room four at three o'clock. " * 17).strip()


def wrapper(tmp_path: Path, program: str = "espeak-ng") -> tuple[str, Path]:
    """A stand-in for espeak-ng that appends its pid to a file and becomes ``program``."""
    spawns = tmp_path / "spawns"
    script = tmp_path / "espeak-wrapper"
    script.write_text(f'#!/bin/sh\necho $$ >> "{spawns}"\nexec {program} "$@"\n')
    script.chmod(0o755)
    return str(script), spawns


def spawned(spawns: Path) -> list[int]:
    return [int(line) for line in spawns.read_text().split()] if spawns.exists() else []


def settings(**changes: object) -> SoundsConfig:
    return SoundsConfig.model_validate(changes)


async def test_a_sentence_is_spoken_as_mono_speech() -> None:
    sound = await Speaker(settings()).speak(SENTENCE)
    assert sound.rate == 22050  # espeak-ng's native rate
    assert 1.5 < active_length(sound.samples, sound.rate) < 4.0
    assert np.abs(sound.samples).max() > 3000  # heard, not a whisper of noise


async def test_speed_is_words_per_minute() -> None:
    slow = await Speaker(settings(speed=100)).speak(SENTENCE)
    fast = await Speaker(settings(speed=300)).speak(SENTENCE)
    ratio = active_length(slow.samples, slow.rate) / active_length(fast.samples, fast.rate)
    assert 2.0 < ratio < 3.5  # 300/100 words per minute, less the pauses espeak-ng keeps


async def test_text_is_never_read_as_an_option(tmp_path: Path) -> None:
    # -w FILE would make espeak-ng write a file; --version would print its version, no sound
    target = tmp_path / "written.wav"
    sound = await Speaker(settings()).speak(f"-w {target} --version hello")
    assert not target.exists()
    assert active_length(sound.samples, sound.rate) > 1.0


async def test_an_unknown_voice_names_the_setting() -> None:
    with pytest.raises(SoundError) as caught:
        await Speaker(settings(voice="xx-nosuch")).speak(SENTENCE)
    assert str(caught.value) == (
        "espeak-ng has no voice 'xx-nosuch': set sounds.voice to one that "
        "`espeak-ng --voices` lists."
    )


async def test_a_render_past_the_timeout_is_refused(tmp_path: Path) -> None:
    program, spawns = wrapper(tmp_path)
    speaker = Speaker(settings(tts_timeout=0.001), program=program)
    with pytest.raises(SoundError) as caught:
        await speaker.speak(LONG)
    assert str(caught.value) == (
        "Text to speech took longer than 0.001 s and was stopped: say it in shorter parts, "
        "or raise sounds.tts_timeout."
    )
    assert_gone(spawned(spawns))


async def test_a_hung_render_is_killed(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    program, spawns = wrapper(tmp_path, f"{sleep} 600 #")  # a hung espeak-ng: never answers
    with pytest.raises(SoundError):
        await Speaker(settings(tts_timeout=1.0), program=program).speak(SENTENCE)
    (pid,) = spawned(spawns)
    assert_gone([pid])


async def test_a_cancelled_render_is_killed(tmp_path: Path) -> None:
    # the hung stand-in writes its pid into a FIFO: reading it waits until the process runs
    sleep = shutil.which("sleep")
    assert sleep is not None
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    script = tmp_path / "hung"
    script.write_text(f'#!/bin/sh\necho $$ > "{fifo}"\nexec {sleep} 600\n')
    script.chmod(0o755)
    speaker = Speaker(settings(tts_timeout=60.0), program=str(script))
    render = asyncio.create_task(speaker.speak(SENTENCE))
    pid = int(await asyncio.wait_for(asyncio.to_thread(fifo.read_text), 10))
    render.cancel()
    with pytest.raises(asyncio.CancelledError):
        await render
    assert_gone([pid])


def assert_gone(pids: list[int]) -> None:
    """The processes were killed and reaped: not even a zombie is left."""
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_a_sentence_spoken_twice_is_rendered_once(tmp_path: Path) -> None:
    program, spawns = wrapper(tmp_path)
    speaker = Speaker(settings(), program=program)
    first = await speaker.speak(SENTENCE)
    again = await speaker.speak(f"  {SENTENCE}\n")  # the same words, spaced differently
    assert again is first
    assert len(spawned(spawns)) == 1


async def test_concurrent_requests_for_a_sentence_render_it_once(tmp_path: Path) -> None:
    program, spawns = wrapper(tmp_path)
    speaker = Speaker(settings(), program=program)
    sounds = await asyncio.gather(*(speaker.speak(SENTENCE) for _ in range(5)))
    assert all(sound is sounds[0] for sound in sounds)
    assert len(spawned(spawns)) == 1


async def test_the_cache_is_keyed_by_voice_and_speed_and_bounded(tmp_path: Path) -> None:
    program, spawns = wrapper(tmp_path)
    speaker = Speaker(settings(cache_size=2), program=program)
    await speaker.speak(SENTENCE)
    speaker.reconfigure(settings(cache_size=2, speed=200))
    await speaker.speak(SENTENCE)  # another speed: rendered again
    await speaker.speak(SENTENCE)
    assert len(spawned(spawns)) == 2
    await speaker.speak("Ten minutes left.")  # a third sentence pushes out the oldest
    speaker.reconfigure(settings(cache_size=2))
    await speaker.speak(SENTENCE)
    assert len(spawned(spawns)) == 4


async def test_no_cache_renders_every_time(tmp_path: Path) -> None:
    program, spawns = wrapper(tmp_path)
    speaker = Speaker(settings(cache_size=0), program=program)
    await speaker.speak(SENTENCE)
    await speaker.speak(SENTENCE)
    assert len(spawned(spawns)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (" \n\t", "There is nothing to say: give the text to speak."),
        (
            "a" * (MAX_TEXT + 1),
            f"That text is {MAX_TEXT + 1} characters long; the bot speaks at most {MAX_TEXT} "
            "at a time: say it in shorter parts.",
        ),
    ],
    ids=["empty", "too-long"],
)
async def test_text_out_of_bounds_is_refused_unrendered(
    tmp_path: Path, text: str, message: str
) -> None:
    program, spawns = wrapper(tmp_path)
    with pytest.raises(SoundError) as caught:
        await Speaker(settings(), program=program).speak(text)
    assert str(caught.value) == message
    assert spawned(spawns) == []


async def test_without_espeak_ng_the_admin_is_told_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(SoundError) as caught:
        await Speaker(settings(), program=str(tmp_path / "espeak-ng")).speak(SENTENCE)
    assert str(caught.value) == (
        "Text to speech needs espeak-ng, which cannot be started here (No such file or "
        "directory): install it (Debian: apt install espeak-ng)."
    )
