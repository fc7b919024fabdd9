"""Password-guessing defence for the embedded registrar and the users who message the bot.

Failed digest attempts are counted per source address in a sliding window; an address with
``max_failures`` in ``window`` seconds is banned: its requests are dropped unanswered for
``ban`` seconds, doubling for each repeat offence up to ``ban_max``. Failures are also counted
per user name across addresses, but that only delays the failed answers for that name - the
real user, answering the challenge right, is never slowed or locked out. Addresses of trusted
proxies and of the ``allow`` list are never banned. Nothing here looks at User-Agent: scanners
set it freely.

Memory is bounded: at most ``TRACKED`` addresses and user names are remembered (least recently
failed go first), and nothing is kept for a request before its credentials fail.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from bot.config import AuthSecurityConfig

log = structlog.get_logger("bot.guard")
TRACKED = 65_536
"""Addresses (and, separately, user names) whose recent failures are remembered."""
USERS_LOGGED = 10
"""User names tried that a ban's log line and listing keep, at most."""
OFFENCE_MEMORY = 86_400.0
"""Seconds a ban counts towards the next one's length."""
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True, kw_only=True)
class Ban:
    address: str
    since: float
    until: float
    failures: int
    users: tuple[str, ...]
    """User names tried from the address (never passwords or digest responses)."""
    offence: int
    """1 for a first ban, 2 for the next within a day, ... (the length doubles each time)."""


class AuthGuard:
    def __init__(self, settings: AuthSecurityConfig, never_ban: Iterable[str] = ()):
        self.settings = settings
        self._never = [_network(item) for item in (*never_ban, *settings.allow)]
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()
        self._users_tried: dict[str, list[str]] = {}
        self._by_user: OrderedDict[str, deque[float]] = OrderedDict()
        self._bans: dict[str, Ban] = {}
        self._offences: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self.failures_total: Counter[str] = Counter()
        self.dropped = 0

    # --- the hot path: every datagram and connection --------------------------------------

    def allows(self, address: str, now: float) -> bool:
        """False while ``address`` is banned: drop what it sends, silently."""
        ban = self._bans.get(address)
        if ban is None:
            return True
        if now < ban.until:
            self.dropped += 1
            return False
        del self._bans[address]
        log.info("guard.ban_ended", address=address)
        return True

    # --- outcomes of authentication -------------------------------------------------------

    def failed(self, address: str, user: str | None, reason: str, now: float) -> float:
        """Count a failed digest attempt; returns how many seconds to hold the answer back
        (the per-user slow-down). Bans the address when it has failed too often."""
        self.failures_total[reason] += 1
        settings = self.settings
        delay = 0.0
        if user:
            attempts = _window(
                self._by_user, user, now, settings.window, settings.user_max_failures
            )
            if len(attempts) >= settings.user_max_failures:
                delay = settings.user_delay
        if self._protected(address):
            return delay
        attempts = _window(self._by_address, address, now, settings.window, settings.max_failures)
        tried = self._users_tried.setdefault(address, [])
        if user and user not in tried and len(tried) < USERS_LOGGED:
            tried.append(user)
        while len(self._users_tried) > TRACKED:
            self._users_tried.pop(next(iter(self._users_tried)))
        if len(attempts) >= settings.max_failures:
            self._ban(address, len(attempts), now)
        return delay

    def _ban(self, address: str, failures: int, now: float) -> None:
        previous, last = self._offences.pop(address, (0, 0.0))
        offence = previous + 1 if now - last < OFFENCE_MEMORY else 1
        self._offences[address] = (offence, now)
        while len(self._offences) > TRACKED:
            self._offences.popitem(last=False)
        length = min(self.settings.ban * 2 ** (offence - 1), self.settings.ban_max)
        users = tuple(self._users_tried.pop(address, ()))
        self._by_address.pop(address, None)
        self._bans[address] = Ban(
            address=address,
            since=now,
            until=now + length,
            failures=failures,
            users=users,
            offence=offence,
        )
        log.warning(
            "guard.banned",
            address=address,
            failures=failures,
            users=list(users),
            seconds=length,
            offence=offence,
        )

    def _protected(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self._never)

    # --- management (admin API) -----------------------------------------------------------

    def bans(self, now: float) -> list[Ban]:
        """The bans in force, oldest first."""
        return sorted((b for b in self._bans.values() if b.until > now), key=lambda b: b.since)

    def lift(self, address: str) -> bool:
        """End a ban now; False when the address was not banned."""
        ban = self._bans.pop(address, None)
        if ban is None:
            return False
        self._by_address.pop(address, None)
        log.info("guard.ban_lifted", address=address)
        return True

    def active_bans(self, now: float) -> int:
        return sum(1 for b in self._bans.values() if b.until > now)


def _window(
    table: OrderedDict[str, deque[float]], key: str, now: float, window: float, keep: int
) -> deque[float]:
    """Record a failure for ``key`` at ``now``; the failures within ``window`` (at most
    ``keep`` of them: enough to decide)."""
    attempts = table.pop(key, None)
    if attempts is None:
        attempts = deque(maxlen=keep)
    attempts.append(now)
    while attempts and now - attempts[0] > window:
        attempts.popleft()
    table[key] = attempts  # most recent last
    while len(table) > TRACKED:
        table.popitem(last=False)
    return attempts


def _network(item: str) -> Network:
    return ipaddress.ip_network(item.strip("[]"), strict=False)
