"""The user endpoint pool: one establishment per user however many ask at once, reuse, idle
expiry, a bound, and failures that reach every waiter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.conferencing.endpoints import UserEndpoint, UserEndpointPool
from bot.conferencing.services import ConferenceError
from bot.conferencing.store import ConferenceStore
from bot.sender import Sender


class Establisher:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[str] = []
        self.fail = False

    async def __call__(self, endpoint: UserEndpoint) -> None:
        self.calls.append(endpoint.user.address)
        await self.gate.wait()
        if self.fail:
            raise OSError("registrar unreachable")


@pytest.fixture
async def store(tmp_path: Path) -> ConferenceStore:
    store = ConferenceStore(f"sqlite+aiosqlite:///{tmp_path / 'db'}")
    await store.open()
    await store.seed_demo("example.test", datetime.now(UTC))  # before any endpoint exists
    yield store  # type: ignore[misc]
    await store.close()


async def test_fifty_users_at_once_make_fifty_endpoints_and_repeats_reuse_them(
    store: ConferenceStore,
) -> None:
    establish = Establisher()
    pool = UserEndpointPool(store, establish=establish)
    users = [Sender(f"user{n}", "example.test") for n in range(50)]
    waiting = [asyncio.ensure_future(pool.get(u)) for u in users for _ in range(3)]
    await asyncio.sleep(0)
    establish.gate.set()
    endpoints = await asyncio.gather(*waiting)
    assert len(establish.calls) == 50 and len(pool) == 50
    assert pool.metrics.establishments == 50 and pool.metrics.hits == 100
    assert len({id(e) for e in endpoints}) == 50
    again = await pool.get(users[0])
    assert again is endpoints[0] and len(establish.calls) == 50


async def test_conferences_from_before_the_endpoint_are_listed_and_only_the_users_own(
    store: ConferenceStore,
) -> None:
    pool = UserEndpointPool(store)
    alice = await pool.get(Sender("alice", "example.test"))
    subjects = [c.subject for c in await alice.conferences.summaries(datetime.now(UTC))]
    assert subjects == ["Weekly sync", "Quarterly review"]
    assert await alice.conferences.details("DEMO0003") is None  # bob's
    assert not await alice.conferences.cancel("DEMO0003")
    bob = await pool.get(Sender("bob", "example.test"))
    assert (await bob.conferences.details("DEMO0003")) is not None


async def test_idle_endpoints_expire_and_the_pool_is_bounded(store: ConferenceStore) -> None:
    now = [0.0]
    pool = UserEndpointPool(store, size=3, idle=60.0, clock=lambda: now[0])
    for n in range(5):
        await pool.get(Sender(f"user{n}", "example.test"))
    assert len(pool) == 3  # the two least recently used went
    now[0] = 30.0
    await pool.get(Sender("user4", "example.test"))
    now[0] = 61.0
    assert pool.expire(now[0]) == 2 and len(pool) == 1  # user4 was used at 30 s
    assert pool.metrics.expired == 2


async def test_a_failed_establishment_reaches_every_waiter_and_is_tried_again(
    store: ConferenceStore,
) -> None:
    establish = Establisher()
    establish.fail = True
    pool = UserEndpointPool(store, establish=establish)
    alice = Sender("alice", "example.test")
    waiting = [asyncio.ensure_future(pool.get(alice)) for _ in range(3)]
    await asyncio.sleep(0)
    establish.gate.set()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, ConferenceError)
        assert "could not act for alice@example.test" in str(outcome)
    assert pool.metrics.failures == 1 and len(pool) == 0
    establish.fail = False
    assert (await pool.get(alice)).user == alice
    assert len(establish.calls) == 2


async def test_a_cancelled_establishment_leaves_nothing_pending_and_the_next_get_establishes(
    store: ConferenceStore,
) -> None:
    establish = Establisher()
    pool = UserEndpointPool(store, establish=establish)
    alice = Sender("alice", "example.test")
    first = asyncio.ensure_future(pool.get(alice))
    await asyncio.wait_for(_until(lambda: len(establish.calls) == 1), 2)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    establish.gate.set()
    # the pending establishment of the cancelled request, left behind, would hang this one
    endpoint = await asyncio.wait_for(pool.get(alice), 2)
    assert endpoint.user == alice and len(establish.calls) == 2 and len(pool) == 1
    assert pool.metrics.failures == 0


async def test_an_endpoint_is_established_again_when_its_validity_ends_on_the_pools_clock(
    store: ConferenceStore,
) -> None:
    now = [0.0]
    made: list[float] = []

    async def register(endpoint: UserEndpoint) -> None:
        made.append(now[0])
        endpoint.valid_until = now[0] + 480.0  # 80 % of a 600 s registration

    pool = UserEndpointPool(store, establish=register, idle=3600.0, clock=lambda: now[0])
    alice = Sender("alice", "example.test")
    await pool.get(alice)
    now[0] = 479.0
    await pool.get(alice)
    assert made == [0.0]
    now[0] = 480.0
    await pool.get(alice)
    assert made == [0.0, 480.0]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0)  # a yield to the loop, not a wait for time
