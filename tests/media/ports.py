"""A port range for the tests: random, so parallel runs rarely meet; the range skips ports
other programs hold anyway."""

from __future__ import annotations

import random

from bot.media.ports import PortRange


def some_range(size: int = 40) -> PortRange:
    low = random.randrange(20000, 32000, 2)  # below the ephemeral ports
    return PortRange(low, low + size - 1)
