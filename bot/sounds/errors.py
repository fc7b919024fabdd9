"""The one error of bot.sounds."""

from __future__ import annotations

from bot.errors import Refusal


class SoundError(Refusal):
    """A sound that cannot be had: the message says what was wrong and how to do it right, in a
    sentence for the person who asked (or the admin who set it up)."""
