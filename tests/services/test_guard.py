"""The password-guessing guard on a fake clock: bans, their end and growth, who is never
banned, the per-user slow-down, and bounded memory."""

from __future__ import annotations

import pytest

from bot.config import AuthSecurityConfig
from bot.services import guard as guard_module
from bot.services.guard import AuthGuard

SETTINGS = AuthSecurityConfig(max_failures=3, window=60, ban=600, ban_max=1500)


def fail(guard: AuthGuard, address: str, times: int, now: float, user: str = "alice") -> None:
    for _ in range(times):
        guard.failed(address, user, "wrong credentials", now)


def test_an_address_is_banned_after_max_failures_within_the_window_and_the_ban_ends() -> None:
    guard = AuthGuard(SETTINGS)
    fail(guard, "198.51.100.7", 2, now=0.0)
    assert guard.allows("198.51.100.7", 1.0)
    fail(guard, "198.51.100.7", 1, now=2.0)
    assert not guard.allows("198.51.100.7", 3.0)
    assert guard.allows("198.51.100.8", 3.0)  # nobody else
    [ban] = guard.bans(3.0)
    assert (ban.address, ban.failures, ban.users, ban.until) == (
        "198.51.100.7",
        3,
        ("alice",),
        602.0,
    )
    assert not guard.allows("198.51.100.7", 601.9)
    assert guard.allows("198.51.100.7", 602.0) and guard.bans(602.0) == []
    assert guard.dropped == 2 and guard.failures_total["wrong credentials"] == 3


def test_failures_older_than_the_window_do_not_count() -> None:
    guard = AuthGuard(SETTINGS)
    fail(guard, "198.51.100.7", 2, now=0.0)
    fail(guard, "198.51.100.7", 2, now=61.0)
    assert guard.allows("198.51.100.7", 62.0)


def test_repeat_offenders_are_banned_twice_as_long_up_to_the_cap() -> None:
    guard = AuthGuard(SETTINGS)
    lengths = []
    now = 0.0
    for _ in range(3):
        fail(guard, "198.51.100.7", 3, now)
        [ban] = guard.bans(now)
        lengths.append(ban.until - ban.since)
        now = ban.until + 1
        assert guard.allows("198.51.100.7", now)
    assert lengths == [600.0, 1200.0, 1500.0]


def test_lifting_a_ban_admits_the_address_at_once() -> None:
    guard = AuthGuard(SETTINGS)
    fail(guard, "198.51.100.7", 3, now=0.0)
    assert guard.lift("198.51.100.7") and guard.allows("198.51.100.7", 1.0)
    assert not guard.lift("198.51.100.7")
    fail(guard, "198.51.100.7", 2, now=1.0)  # the count started again
    assert guard.allows("198.51.100.7", 1.0)


def test_trusted_proxies_and_the_allow_list_are_never_banned() -> None:
    settings = AuthSecurityConfig(max_failures=3, allow=("10.1.0.0/16", "2001:db8::1"))
    guard = AuthGuard(settings, never_ban=["192.0.2.1"])
    for address in ("192.0.2.1", "10.1.2.3", "2001:db8::1", "[2001:db8::1]"):
        fail(guard, address, 10, now=0.0)
        assert guard.allows(address, 1.0)
    assert guard.bans(1.0) == []


def test_the_user_slow_down_never_bans_and_counts_across_addresses() -> None:
    guard = AuthGuard(AuthSecurityConfig(user_max_failures=3, user_delay=2.0, max_failures=10))
    delays = [guard.failed(f"198.51.100.{n}", "alice", "wrong credentials", 0.0) for n in range(5)]
    assert delays == [0.0, 0.0, 2.0, 2.0, 2.0]
    assert guard.bans(0.0) == []
    assert guard.failed("198.51.100.9", "bob", "wrong credentials", 0.0) == 0.0


def test_memory_stays_bounded_under_a_spray_of_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guard_module, "TRACKED", 100)
    guard = AuthGuard(SETTINGS)
    for n in range(5000):
        guard.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", f"user{n}", "wrong", 0.0)
    assert len(guard._by_address) <= 100 and len(guard._by_user) <= 100
    assert len(guard._users_tried) <= 100
