"""What the bot remembers of each sender between commands (the numbers of the last listing, a
cancellation waiting for 'yes'): bounded in count and in time, so that senders who write once
and never again cost nothing after a while."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

MAX_SENDERS = 10_000
"""Senders remembered at once; the one unheard from longest is forgotten first."""
KEEP_SECONDS = 3600.0
"""How long a sender's memory outlives their last command: an hour-old listing's numbers
mean nothing to the person who sent 'meeting 2'."""


class SenderMemory:
    """Per-sender dicts, least recently used first; entries expire ``keep`` seconds after
    their sender's last command."""

    def __init__(self, *, size: int = MAX_SENDERS, keep: float = KEEP_SECONDS):
        self.size = size
        self.keep = keep
        self._entries: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()
        self._swept = -1.0
        """When expired entries were last dropped: at that same time none is left to drop (a
        command asks several times)."""

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sender: str, now: float) -> dict[str, Any]:
        """``sender``'s memory (empty when new or expired), now the most recently used."""
        self._expire(now)
        entries = self._entries
        found = entries.get(sender)
        if found is not None:
            entries.move_to_end(sender)
            entries[sender] = (found[0], now)
            return found[0]
        memory: dict[str, Any] = {}
        entries[sender] = (memory, now)
        while len(entries) > self.size:
            entries.popitem(last=False)
        return memory

    def peek(self, sender: str, now: float) -> dict[str, Any] | None:
        """``sender``'s memory if there is one, without making it recently used."""
        self._expire(now)
        found = self._entries.get(sender)
        return found[0] if found is not None else None

    def _expire(self, now: float) -> None:
        if now == self._swept:
            return
        self._swept = now
        # ordered by last use: the expired ones are all at the front
        while self._entries:
            _, used = next(iter(self._entries.values()))
            if now - used < self.keep:
                return
            self._entries.popitem(last=False)
