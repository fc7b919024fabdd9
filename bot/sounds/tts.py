"""Text to speech: espeak-ng as a subprocess, one render per (text, voice, speed).

The text goes to espeak-ng's standard input (``--stdin``), never on its command line, so no text
can be read as an option. A render that outlasts ``sounds.tts_timeout`` is killed. Rendered
sentences are kept in a least-recently-used cache of ``sounds.cache_size``; requests for a
sentence being rendered wait for that render (bot.singleflight).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from bot.config.announcing import SoundsConfig
from bot.singleflight import SingleFlightCache
from bot.sounds.errors import SoundError
from bot.sounds.sound import Sound
from bot.sounds.wav import parse_wav

log = structlog.get_logger("bot.sounds")

MAX_TEXT = 1000
"""Characters of one sentence: about a minute of speech at 160 words per minute, longer than an
announcement should be, and it bounds what one render costs."""

_NO_VOICE = b"voice does not exist"
"""What espeak-ng 1.51 writes to stderr for an unknown ``-v``."""

Key = tuple[str, str, int]


class Speaker:
    def __init__(self, settings: SoundsConfig, *, program: str = "espeak-ng"):
        """``program``: the espeak-ng executable (a name on PATH or a path)."""
        self._settings = settings
        self._program = program
        self._cache: SingleFlightCache[Key, Sound] = SingleFlightCache(size=settings.cache_size)

    def reconfigure(self, settings: SoundsConfig) -> None:
        """New voice, speed, timeout or cache size (a config reload); sentences rendered with
        the old voice or speed stay cached under their own key until they age out."""
        self._settings = settings
        self._cache.size = settings.cache_size

    async def speak(self, text: str) -> Sound:
        """``text`` spoken with the configured voice and speed."""
        text = " ".join(text.split())
        if not text:
            raise SoundError("There is nothing to say: give the text to speak.")
        if len(text) > MAX_TEXT:
            raise SoundError(
                f"That text is {len(text)} characters long; the bot speaks at most {MAX_TEXT} "
                "at a time: say it in shorter parts."
            )
        settings = self._settings
        key = (text, settings.voice, settings.speed)
        return await self._cache.get(key, lambda: self._render(key, settings.tts_timeout))

    async def _render(self, key: Key, timeout: float) -> Sound:
        text, voice, speed = key
        started = time.monotonic()
        starting = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                self._program,
                *("-v", voice, "-s", str(speed), "--stdout", "--stdin"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        )
        try:
            process = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # cancelled while espeak-ng starts (uvloop would kill it there without reaping it):
            # it is let start, then killed and reaped as a render cancelled later
            with contextlib.suppress(OSError):
                started_late = await starting
                started_late.kill()
                await started_late.wait()
            raise
        except OSError as exc:
            raise SoundError(
                f"Text to speech needs espeak-ng, which cannot be started here ({exc.strerror}): "
                "install it (Debian: apt install espeak-ng)."
            ) from None
        try:
            out, err = await asyncio.wait_for(process.communicate(text.encode()), timeout)
        except TimeoutError:
            log.warning("sounds.speech.timed_out", chars=len(text), timeout=timeout)
            raise SoundError(
                f"Text to speech took longer than {timeout:g} s and was stopped: say it in "
                "shorter parts, or raise sounds.tts_timeout."
            ) from None
        finally:
            if process.returncode is None:  # timed out or cancelled: leave no process behind
                process.kill()
                await process.wait()
        if process.returncode != 0:
            if _NO_VOICE in err:
                raise SoundError(
                    f"espeak-ng has no voice '{voice}': set sounds.voice to one that "
                    "`espeak-ng --voices` lists."
                )
            said = err.decode(errors="replace").strip().splitlines()
            raise SoundError(
                f"Text to speech failed (espeak-ng exited with {process.returncode}"
                f"{': ' + said[-1] if said else ''})."
            )
        sound = parse_wav(out, "espeak-ng's output")
        log.info(
            "sounds.speech.rendered",
            chars=len(text),
            voice=voice,
            seconds=round(sound.duration, 2),
            ms=round((time.monotonic() - started) * 1000),
        )
        return sound
