"""The password-guessing guard on a fake clock: bans, their end and growth, who is never
banned, the per-user slow-down, and bounded memory."""

from __future__ import annotations

import pytest
import structlog

from bot.config import AuthSecurityConfig
from bot.services import guard as guard_module
from bot.services.guard import AuthGuard, exemptions

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
    lengths: list[float] = []
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


def attempt(guard: AuthGuard, address: str, correct: bool, now: float) -> float | None:
    """What the identity gate does with a verdict on "alice": pace it, then record it."""
    hold = guard.pace("alice", address, correct, now)
    if correct:
        guard.succeeded("alice", address, now)
    else:
        guard.failed(address, "alice", "wrong credentials", now)
    return hold


def test_the_user_slow_down_never_bans_and_counts_across_addresses() -> None:
    guard = AuthGuard(AuthSecurityConfig(user_max_failures=3, user_delay=2.0, max_failures=10))
    holds = [attempt(guard, f"198.51.100.{n}", False, 0.0) for n in range(5)]
    # from the third failure on, one verdict per 2 s for the name, however many arrive at once
    assert holds == [0.0, 0.0, 0.0, 2.0, 4.0]
    assert guard.bans(0.0) == []
    assert guard.pace("bob", "198.51.100.9", False, 0.0) == 0.0


def test_a_correct_guess_under_a_heavy_per_user_attack_is_slowed() -> None:
    """Parallel guessing: the right password, sent among many wrong ones from new addresses,
    gets its verdict no sooner than a wrong one; beyond HOLD_MAX there is no verdict at all."""
    guard = AuthGuard(AuthSecurityConfig(user_max_failures=3, user_delay=2.0, max_failures=50))
    for n in range(3):
        attempt(guard, f"203.0.113.{n}", False, 0.0)
    right = attempt(guard, "203.0.113.99", True, 0.0)
    assert right is not None and right >= 2.0
    holds = [guard.pace("alice", f"203.0.113.{n}", False, 0.0) for n in range(20)]
    assert None in holds  # beyond 16 s of queue: answered 503, no verdict
    assert max(h for h in holds if h is not None) <= guard_module.HOLD_MAX


def test_the_real_user_from_a_known_address_is_answered_at_once_during_an_attack() -> None:
    guard = AuthGuard(AuthSecurityConfig(user_max_failures=3, user_delay=2.0, max_failures=50))
    attempt(guard, "192.0.2.10", True, 0.0)  # alice's own client, before the attack
    for n in range(30):
        guard.pace("alice", f"203.0.113.{n}", False, 1.0)
        guard.failed(f"203.0.113.{n}", "alice", "wrong credentials", 1.0)
    assert attempt(guard, "192.0.2.10", True, 2.0) == 0.0
    assert attempt(guard, "192.0.2.10", False, 2.0) != 0.0  # a wrong answer there is paced


def test_a_user_is_known_at_their_last_addresses_only() -> None:
    """KNOWN_PER_USER addresses a user authenticated from are kept: the least recently seen
    goes first, one seen again counts as recent."""
    guard = AuthGuard(AuthSecurityConfig(user_max_failures=3, user_delay=2.0, max_failures=50))
    homes = [f"192.0.2.{n}" for n in range(guard_module.KNOWN_PER_USER + 1)]
    for n, home in enumerate(homes[:-1]):
        attempt(guard, home, True, float(n))
    attempt(guard, homes[0], True, 10.0)  # seen again: now the most recent
    attempt(guard, homes[-1], True, 11.0)  # one too many: homes[1] goes
    for n in range(30):
        guard.pace("alice", f"203.0.113.{n}", False, 12.0)
        guard.failed(f"203.0.113.{n}", "alice", "wrong credentials", 12.0)
    known = [homes[0], *homes[2:]]
    assert [attempt(guard, home, True, 13.0) for home in known] == [0.0] * len(known)
    assert attempt(guard, homes[1], True, 13.0) != 0.0  # forgotten: paced as anyone


def test_an_ipv6_ban_covers_the_whole_64() -> None:
    guard = AuthGuard(SETTINGS)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "[2001:db8:1:2:ffff::9]"):
        guard.failed(host, "alice", "wrong credentials", 0.0)  # hopping inside one /64
    assert not guard.allows("2001:db8:1:2:abcd::1", 1.0)
    assert guard.allows("2001:db8:1:3::1", 1.0)  # the next /64 is someone else
    [ban] = guard.bans(1.0)
    assert ban.address == "2001:db8:1:2::/64"
    assert guard.lift("2001:db8:1:2::7") and guard.allows("2001:db8:1:2::1", 2.0)


def test_expired_bans_are_swept_without_a_lookup() -> None:
    guard = AuthGuard(SETTINGS)
    fail(guard, "198.51.100.7", 3, now=0.0)
    fail(guard, "198.51.100.8", 1, now=700.0)  # any later activity ends what is over
    assert guard._bans == {}
    fail(guard, "198.51.100.9", 3, now=800.0)
    assert guard.active_bans(1500.0) == 0 and guard._bans == {}


def test_the_ban_log_line_says_how_to_lift_it() -> None:
    guard = AuthGuard(SETTINGS)
    with structlog.testing.capture_logs() as logs:
        fail(guard, "198.51.100.7", 3, now=0.0)
    [banned] = [entry for entry in logs if entry["event"] == "guard.banned"]
    assert "sipbot unban 198.51.100.7" in banned["lift"]


def test_a_reload_rebuilds_the_exemptions() -> None:
    guard = AuthGuard(SETTINGS)
    settings = AuthSecurityConfig(max_failures=3, allow=("198.51.100.0/24",))
    guard.reconfigure(settings, exemptions(settings, ["192.0.2.1"]))
    fail(guard, "198.51.100.7", 5, now=0.0)
    fail(guard, "192.0.2.1", 5, now=0.0)
    assert guard.allows("198.51.100.7", 1.0) and guard.allows("192.0.2.1", 1.0)


def test_long_user_names_are_never_remembered() -> None:
    guard = AuthGuard(SETTINGS)
    guard.failed("198.51.100.7", "x" * 30_000, "wrong credentials", 0.0)
    assert guard._by_user == {} and guard._users_tried["198.51.100.7"] == []


def test_memory_stays_bounded_under_a_spray_of_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guard_module, "TRACKED", 100)
    guard = AuthGuard(SETTINGS)
    for n in range(5000):
        guard.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", f"user{n}", "wrong", 0.0)
    assert len(guard._by_address) <= 100 and len(guard._by_user) <= 100
    assert len(guard._users_tried) <= 100
