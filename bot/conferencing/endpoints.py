"""User endpoints: the bot acting for one user, as UCMA's ``UserEndpoint`` does.

A conference server tells an organizer only about the organizer's own conferences, so the bot
asks as that user - through an endpoint per user. The pool creates one on first use (one
establishment however many requests wait for it), shares it, keeps at most ``size`` (least
recently used go first) and drops those idle for ``idle`` seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bot.conferencing.services import BoundConferences, ConferenceBackend, ConferenceError
from bot.sender import Sender

log = structlog.get_logger("bot.endpoints")


class UserEndpoint:
    """Acts for ``user``; its conference services see and change only that user's."""

    __slots__ = ("user", "conferences", "last_used", "valid_until")

    def __init__(self, user: Sender, backend: ConferenceBackend):
        self.user = user
        self.conferences = BoundConferences(backend, user.address)
        self.last_used = 0.0
        self.valid_until = math.inf
        """When it must be established again (a registration running out)."""


Establish = Callable[[UserEndpoint], Awaitable[None]]
"""What makes an endpoint usable: nothing (trusted, embedded) or a REGISTER as the user."""


async def nothing_to_establish(endpoint: UserEndpoint) -> None:
    return None


@dataclass(slots=True)
class PoolMetrics:
    hits: int = 0
    establishments: int = 0
    failures: int = 0
    expired: int = 0


class UserEndpointPool:
    def __init__(
        self,
        backend: ConferenceBackend,
        *,
        establish: Establish = nothing_to_establish,
        size: int = 10_000,
        idle: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.backend = backend
        self.establish = establish
        self.size = size
        self.idle = idle
        self._clock = clock
        self._ready: OrderedDict[str, UserEndpoint] = OrderedDict()
        self._pending: dict[str, asyncio.Future[UserEndpoint]] = {}
        self.metrics = PoolMetrics()

    def __len__(self) -> int:
        return len(self._ready)

    async def get(self, user: Sender) -> UserEndpoint:
        """``user``'s endpoint, established on first use. Raises ConferenceError when it
        cannot be established."""
        now = self._clock()
        self.expire(now)
        key = user.address
        endpoint = self._ready.get(key)
        if endpoint is not None and endpoint.valid_until <= time.monotonic():
            del self._ready[key]  # e.g. its registration runs out: establish it again
            endpoint = None
        if endpoint is not None:
            self._ready.move_to_end(key)
            endpoint.last_used = now
            self.metrics.hits += 1
            return endpoint
        pending = self._pending.get(key)
        if pending is not None:
            self.metrics.hits += 1
            return await asyncio.shield(pending)
        return await self._create(user, now)

    async def _create(self, user: Sender, now: float) -> UserEndpoint:
        key = user.address
        future: asyncio.Future[UserEndpoint] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        endpoint = UserEndpoint(user, self.backend)
        endpoint.last_used = now
        try:
            await self.establish(endpoint)
        except Exception as exc:
            self.metrics.failures += 1
            del self._pending[key]
            log.warning("endpoint.failed", user=key, error=str(exc))
            error = (
                exc
                if isinstance(exc, ConferenceError)
                else ConferenceError(f"I could not act for {key} on the conference server.")
            )
            future.set_exception(error)
            future.exception()  # retrieved by the waiters, if any
            raise error from exc
        del self._pending[key]
        self.metrics.establishments += 1
        self._ready[key] = endpoint
        while len(self._ready) > self.size:
            self._ready.popitem(last=False)
        future.set_result(endpoint)
        return endpoint

    def expire(self, now: float) -> int:
        """Drop the endpoints idle for ``idle`` seconds; how many went."""
        gone = 0
        while self._ready:
            key, oldest = next(iter(self._ready.items()))
            if now - oldest.last_used < self.idle:
                break
            del self._ready[key]
            gone += 1
        self.metrics.expired += gone
        return gone
