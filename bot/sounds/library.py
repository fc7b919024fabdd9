"""The sounds the bot plays, as commands and rules ask for them: speech and clips, each with the
configured silence before and after (a call's first words are not clipped while the far end
settles, and the hang-up does not cut the last)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot import datadir
from bot.config.announcing import SoundsConfig
from bot.sounds.clips import ClipFolder
from bot.sounds.sound import Sound
from bot.sounds.tts import Speaker

CLIPS = "clips"
"""The clip folder in the data directory when ``sounds.clips`` is not set."""


class Sounds:
    def __init__(self, settings: SoundsConfig, data_dir: Path | None):
        """``data_dir``: the bot's data directory (None: bot.datadir's default)."""
        self._data_dir = datadir.data_dir(data_dir)
        self._speaker = Speaker(settings)
        self.reconfigure(settings)

    def reconfigure(self, settings: SoundsConfig) -> None:
        """New settings (a config reload): voice, speed, silences, clip folder, cache size."""
        self._settings = settings
        self._speaker.reconfigure(settings)
        self.clips = ClipFolder(settings.clips or self._data_dir / CLIPS)

    async def speech(self, text: str) -> Sound:
        """``text`` spoken, with the configured silence around it."""
        return self._padded(await self._speaker.speak(text))

    async def clip(self, name: str) -> Sound:
        """The clip ``name``, with the configured silence around it."""
        # the file is read and decoded in a thread: a large clip must not stall every call
        return self._padded(await asyncio.to_thread(self.clips.clip, name))

    def _padded(self, sound: Sound) -> Sound:
        return sound.padded(self._settings.lead_silence, self._settings.trail_silence)
