"""What the bot remembers of each sender between commands (the numbers of the last listing, a
cancellation waiting for 'yes'): bounded in count and in time, so that senders who write once
and never again cost nothing after a while."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MAX_SENDERS = 10_000
"""Senders remembered at once; the one unheard from longest is forgotten first."""
KEEP_SECONDS = 3600.0
"""How long a sender's memory outlives their last command: an hour-old listing's numbers
mean nothing to the person who sent 'meeting 2'."""
SWEEP_EVERY = 1.0
"""Seconds between two sweeps of the expired entries (each command asks for its sender's)."""


@dataclass(slots=True)
class _Entry:
    memory: dict[str, Any]
    used: float
    """When its sender's last command came (the loop's clock): changed in place, each time."""


class SenderMemory:
    """Per-sender dicts, least recently used first; entries expire ``keep`` seconds after
    their sender's last command."""

    def __init__(self, *, size: int = MAX_SENDERS, keep: float = KEEP_SECONDS):
        self.size = size
        self.keep = keep
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._next_sweep = float("-inf")
        """When expired entries are next dropped: at most every SWEEP_EVERY seconds (an entry
        asked for is checked itself), not at every command - a comparison where they are asked
        for, not a call."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sender: str, now: float) -> dict[str, Any]:
        """``sender``'s memory (empty when new or expired), now the most recently used."""
        if now >= self._next_sweep:
            self._expire(now)
        entries = self._entries
        found = entries.get(sender)
        if found is not None:
            if now - found.used < self.keep:
                entries.move_to_end(sender)
                found.used = now
                return found.memory
            del entries[sender]  # expired, not swept yet
        memory: dict[str, Any] = {}
        entries[sender] = _Entry(memory, now)
        while len(entries) > self.size:
            entries.popitem(last=False)
        return memory

    def peek(self, sender: str, now: float) -> dict[str, Any] | None:
        """``sender``'s memory if there is one, without making it recently used."""
        if now >= self._next_sweep:
            self._expire(now)
        found = self._entries.get(sender)
        return found.memory if found is not None and now - found.used < self.keep else None

    def _expire(self, now: float) -> None:
        """Drop the expired entries (the next time at SWEEP_EVERY seconds from now)."""
        self._next_sweep = now + SWEEP_EVERY
        # ordered by last use: the expired ones are all at the front
        while self._entries:
            if now - next(iter(self._entries.values())).used < self.keep:
                return
            self._entries.popitem(last=False)
