"""Password-guessing defence for the embedded registrar and the users who message the bot.

Only a *wrong answer to a nonce issued to that very source* is a failure (the nonce's HMAC
binds the source address, bot.sip.digest): forged datagrams with a victim's source address carry
nonces that were never sent there, so they can neither ban the victim nor count as guesses.
Failures are counted per source in a sliding window; a source with ``max_failures`` in
``window`` seconds is banned: what it sends is dropped unanswered for ``ban`` seconds, doubling
for each repeat offence up to ``ban_max``. An IPv4 source is its address; an IPv6 source is its
/64 (one host usually holds a whole /64 and can hop inside it at will). Addresses of trusted
proxies and of the ``allow`` list are never banned. Nothing here looks at User-Agent: scanners
set it freely. Every ban's log line says how to lift it (``sipbot unban ADDRESS``).

**Per user name, whatever the outcome.** Once a user name has ``user_max_failures`` failures
in ``window`` (from anywhere), every verdict on that name - right or wrong - is paced: answers
leave at most one per ``user_delay`` seconds, and an attempt that would wait longer than
``HOLD_MAX`` is answered 503 without its verdict. Many guesses in parallel therefore buy no
more verdicts than one at a time. The real user is never locked out: an address the user
authenticated from before (remembered ``KNOWN_FOR`` seconds) gets a correct answer at once;
only from a new address does the user wait in the same queue as the guesser.

Memory is bounded: at most ``TRACKED`` sources and user names are remembered (least recently
failed go first), user names longer than ``KEY_MAX`` are never remembered, and nothing is kept
for a request before its credentials fail.
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
"""Sources (and, separately, user names) whose recent failures are remembered."""
USERS_LOGGED = 10
"""User names tried that a ban's log line and listing keep, at most."""
OFFENCE_MEMORY = 86_400.0
"""Seconds a ban counts towards the next one's length."""
KEY_MAX = 128
"""Longest user name remembered (bytes of text): longer ones are never keys of a table."""
HOLD_MAX = 16.0
"""Seconds a paced answer may wait: half of Timer F (64*T1 = 32 s, RFC 3261 §17.1.2.2), so the
client is still listening; beyond it the attempt gets 503 instead of a verdict."""
KNOWN_FOR = 7 * 86_400.0
"""Seconds an address a user authenticated from stays known (answered at once under attack)."""
KNOWN_PER_USER = 4
"""Known addresses kept per user name."""
V6_PREFIX = 64
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(slots=True, kw_only=True)
class Ban:
    address: str
    """The banned source: an IPv4 address, or an IPv6 /64 (``2001:db8:1:2::/64``)."""
    since: float
    until: float
    failures: int
    users: tuple[str, ...]
    """User names tried from the address (never passwords or digest responses)."""
    offence: int
    """1 for a first ban, 2 for the next within a day, ... (the length doubles each time)."""

    def describe(self, now: float) -> dict[str, object]:
        """The ban as the admin API and the control channel (``sipbot bans``) show it."""
        return {
            "address": self.address,
            "seconds_left": round(self.until - now, 1),
            "failures": self.failures,
            "users_tried": list(self.users),
            "offence": self.offence,
        }


def source_of(address: str) -> str:
    """The unit a ban covers: an IPv4 address as it is, an IPv6 address's /64."""
    text = address.strip("[]")
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        try:  # an admin naming the /64 itself
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return text
        if network.version == 6 and network.prefixlen <= V6_PREFIX:
            return str(network.supernet(new_prefix=V6_PREFIX))
        return text
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{V6_PREFIX}", strict=False))
    return str(ip)


class AuthGuard:
    def __init__(self, settings: AuthSecurityConfig, never_ban: Iterable[str] = ()):
        self.settings = settings
        self._never = exemptions(settings, never_ban)
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()
        self._users_tried: dict[str, list[str]] = {}
        self._by_user: OrderedDict[str, deque[float]] = OrderedDict()
        self._next_answer: dict[str, float] = {}
        self._known: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._bans: dict[str, Ban] = {}
        self._first_end = float("inf")
        self._offences: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self.failures_total: Counter[str] = Counter()
        self.dropped = 0

    def reconfigure(self, settings: AuthSecurityConfig, never: list[Network]) -> None:
        """New settings and exemptions (a config reload; ``never`` from :func:`exemptions`)."""
        self.settings = settings
        self._never = never

    # --- the hot path: every datagram and connection --------------------------------------

    def allows(self, address: str, now: float) -> bool:
        """False while ``address`` is banned: drop what it sends, silently."""
        if not self._bans:
            return True
        if now >= self._first_end:
            self.sweep(now)
        if source_of(address) in self._bans:
            self.dropped += 1
            return False
        return True

    def sweep(self, now: float) -> None:
        """End the bans that are over (cheap when none is: the earliest end is known)."""
        if now < self._first_end:
            return
        for key in [k for k, ban in self._bans.items() if ban.until <= now]:
            del self._bans[key]
            log.info("guard.ban_ended", address=key)
        self._first_end = min((b.until for b in self._bans.values()), default=float("inf"))

    # --- outcomes of authentication -------------------------------------------------------

    def pace(self, user: str | None, address: str, correct: bool, now: float) -> float | None:
        """Seconds to hold the verdict on an attempt for ``user`` back; None: over capacity,
        answer 503 without a verdict. Only much-guessed user names are paced (module doc)."""
        if not user or len(user) > KEY_MAX or self.settings.user_delay <= 0:
            return 0.0
        attempts = self._by_user.get(user)
        if attempts is None:
            return 0.0
        while attempts and now - attempts[0] > self.settings.window:
            attempts.popleft()
        if len(attempts) < self.settings.user_max_failures:
            return 0.0
        if correct and self._known_address(user, address, now):
            return 0.0
        at = max(now, self._next_answer.get(user, now)) + self.settings.user_delay
        if at - now > HOLD_MAX:
            return None
        self._next_answer[user] = at
        while len(self._next_answer) > TRACKED:
            self._next_answer.pop(next(iter(self._next_answer)))
        return at - now

    def succeeded(self, user: str, address: str, now: float) -> None:
        """``user`` authenticated from ``address``: remember it as one of theirs."""
        if len(user) > KEY_MAX:
            return
        known = self._known.get(user)
        if known is not None:
            self._known.move_to_end(user)  # the most recent user last
        else:
            known = self._known[user] = {}
            while len(self._known) > TRACKED:
                self._known.popitem(last=False)
        if known.pop(address, None) is None and len(known) >= KNOWN_PER_USER:
            known.pop(next(iter(known)))  # the address seen longest ago goes
        known[address] = now  # the most recent address last

    def _known_address(self, user: str, address: str, now: float) -> bool:
        seen = self._known.get(user, {}).get(address)
        return seen is not None and now - seen < KNOWN_FOR

    def failed(self, address: str, user: str | None, reason: str, now: float) -> None:
        """Count a wrong answer to a nonce issued to ``address``; bans the source when it has
        failed too often."""
        self.failures_total[reason] += 1
        settings = self.settings
        if user and len(user) <= KEY_MAX:
            _window(self._by_user, user, now, settings.window, settings.user_max_failures)
        if self._protected(address):
            return
        source = source_of(address)
        attempts = _window(self._by_address, source, now, settings.window, settings.max_failures)
        tried = self._users_tried.setdefault(source, [])
        if user and len(user) <= KEY_MAX and user not in tried and len(tried) < USERS_LOGGED:
            tried.append(user)
        while len(self._users_tried) > TRACKED:
            self._users_tried.pop(next(iter(self._users_tried)))
        if len(attempts) >= settings.max_failures:
            self._ban(source, len(attempts), now)
        self.sweep(now)

    def _ban(self, source: str, failures: int, now: float) -> None:
        previous, last = self._offences.pop(source, (0, 0.0))
        offence = previous + 1 if now - last < OFFENCE_MEMORY else 1
        self._offences[source] = (offence, now)
        while len(self._offences) > TRACKED:
            self._offences.popitem(last=False)
        length = min(self.settings.ban * 2 ** (offence - 1), self.settings.ban_max)
        users = tuple(self._users_tried.pop(source, ()))
        self._by_address.pop(source, None)
        ban = Ban(
            address=source,
            since=now,
            until=now + length,
            failures=failures,
            users=users,
            offence=offence,
        )
        self._bans[source] = ban
        self._first_end = min(self._first_end, ban.until)
        log.warning(
            "guard.banned",
            address=source,
            failures=failures,
            users=list(users),
            seconds=length,
            offence=offence,
            lift=f"sipbot unban {source} (or DELETE /admin/bans/{source.partition('/')[0]})",
        )

    def _protected(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self._never)

    # --- management (admin API, CLI) ------------------------------------------------------

    def bans(self, now: float) -> list[Ban]:
        """The bans in force, oldest first."""
        self.sweep(now)
        return sorted(self._bans.values(), key=lambda b: b.since)

    def lift(self, address: str) -> bool:
        """End a ban now (an address, or an IPv6 /64); False when it was not banned."""
        source = source_of(address)
        ban = self._bans.pop(source, None)
        if ban is None:
            return False
        self._by_address.pop(source, None)
        log.info("guard.ban_lifted", address=source)
        return True

    def active_bans(self, now: float) -> int:
        self.sweep(now)
        return len(self._bans)


def exemptions(settings: AuthSecurityConfig, never_ban: Iterable[str]) -> list[Network]:
    """The networks never banned: the trusted proxies and ``security.auth.allow``."""
    return [_network(item) for item in (*never_ban, *settings.allow)]


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
