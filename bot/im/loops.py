"""Loop safety: the bot answers only a person's text, and stops a conversation that has turned
into an exchange between automata.

Two rules. (1) Never answer something an automaton sent: the bot itself, a configured
automaton (another bot), or a message marked ``Auto-Submitted`` (the RFC 3834 marker, carried
as a SIP header - the bot puts it on its own replies, so two sipbots never answer each other).
(2) A circuit breaker per sender: more than ``max_replies`` replies within ``window`` seconds
and the bot goes quiet for that sender until the rate falls, saying so once in the log.
"""

from __future__ import annotations

import functools
from collections import OrderedDict, deque

import structlog

from bot.config import ImConfig
from bot.sender import Sender
from bot.sip.message import Request

log = structlog.get_logger("bot.im")
AUTO_SUBMITTED = "Auto-Submitted"
TRACKED = 65_536


class LoopGuard:
    def __init__(self, settings: ImConfig, bot: Sender):
        self.settings = settings
        self._bot = bot.address.lower()
        self._replies: OrderedDict[str, deque[float]] = OrderedDict()
        self._tripped: set[str] = set()
        self.suppressed = 0

    def from_automaton(self, request: Request, sender: Sender) -> str | None:
        """Why this message comes from an automaton (and gets no reply), or None."""
        address = sender.address.lower()
        if address == self._bot:
            return "from the bot itself"
        automata = self.settings.automata
        if automata and address in _addresses(automata):
            return "from a configured automaton"
        marker = request.headers.get(AUTO_SUBMITTED)
        if marker is None:  # a person's client sends none
            return None
        marker = marker.strip().lower()
        return f"Auto-Submitted: {marker}" if marker != "no" else None

    def may_reply(self, sender: Sender, now: float) -> bool:
        """Count a reply to ``sender`` unless the breaker is open for it."""
        settings = self.settings.loop_breaker
        key = sender.address
        times = self._replies.get(key)
        if times is not None:
            self._replies.move_to_end(key)
        else:
            times = self._replies[key] = deque(maxlen=settings.max_replies + 1)
            while len(self._replies) > TRACKED:
                forgotten, _ = self._replies.popitem(last=False)
                self._tripped.discard(forgotten)
        while times and now - times[0] > settings.window:
            times.popleft()
        if len(times) >= settings.max_replies:
            self.suppressed += 1
            if key not in self._tripped:
                self._tripped.add(key)
                log.warning(
                    "im.loop_suspected",
                    sender=key,
                    replies=len(times),
                    window=settings.window,
                    action="no more replies until the sender slows down",
                )
            return False
        if self._tripped:
            self._tripped.discard(key)
        times.append(now)
        return True


@functools.lru_cache(maxsize=4)
def _addresses(automata: tuple[str, ...]) -> frozenset[str]:
    """``im.automata`` as compared with a sender's address (kept per config: a reload brings
    its own tuple)."""
    return frozenset(a.lower().removeprefix("sip:") for a in automata)
