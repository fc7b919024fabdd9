"""What the bot plays into a call: WAV clips from a folder and sentences spoken by espeak-ng,
as mono 16-bit samples at their own rate (``Sound.at`` resamples for a codec)."""

from bot.sounds.errors import SoundError
from bot.sounds.library import Sounds
from bot.sounds.sound import Sound

__all__ = ["Sound", "SoundError", "Sounds"]
