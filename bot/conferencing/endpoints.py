"""User endpoints: the bot acting for one user, as UCMA's ``UserEndpoint`` does.

A conference server tells an organizer only about the organizer's own conferences, so the bot
asks as that user - through an endpoint per user. The pool creates one on first use (one
establishment however many requests wait for it), shares it, keeps at most ``size`` (least
recently used go first) and drops those idle for ``idle`` seconds, and those whose
``valid_until`` has come (establishment sets it, on the pool's clock). The mechanics are
bot.singleflight's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bot.conferencing.services import BoundConferences, ConferenceBackend, ConferenceError
from bot.sender import Sender
from bot.singleflight import SingleFlightCache

log = structlog.get_logger("bot.endpoints")


class UserEndpoint:
    """Acts for ``user``; its conference services see and change only that user's."""

    __slots__ = ("user", "conferences", "valid_until")

    def __init__(self, user: Sender, backend: ConferenceBackend):
        self.user = user
        self.conferences = BoundConferences(backend, user.address)
        self.valid_until = math.inf
        """When it must be established again (a registration running out), on the pool's
        clock."""


Establish = Callable[[UserEndpoint], Awaitable[None]]
"""What makes an endpoint usable: nothing (trusted, embedded) or a REGISTER as the user."""


async def nothing_to_establish(endpoint: UserEndpoint) -> None:
    return None


@dataclass(frozen=True, slots=True)
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
        self._endpoints: SingleFlightCache[str, UserEndpoint] = SingleFlightCache(
            size=size, idle=idle, deadline=lambda endpoint: endpoint.valid_until, clock=clock
        )

    @property
    def metrics(self) -> PoolMetrics:
        counted = self._endpoints.metrics
        return PoolMetrics(
            hits=counted.hits,
            establishments=counted.succeeded,
            failures=counted.failures,
            expired=counted.expired,
        )

    def __len__(self) -> int:
        return len(self._endpoints)

    async def get(self, user: Sender) -> UserEndpoint:
        """``user``'s endpoint, established on first use. Raises ConferenceError when it
        cannot be established."""
        return await self._endpoints.get(user.address, lambda: self._create(user))

    async def _create(self, user: Sender) -> UserEndpoint:
        endpoint = UserEndpoint(user, self.backend)
        try:
            await self.establish(endpoint)
        except Exception as exc:
            key = user.address
            log.warning("endpoint.failed", user=key, error=str(exc))
            if isinstance(exc, ConferenceError):
                raise
            raise ConferenceError(f"I could not act for {key} on the conference server.") from exc
        return endpoint

    def expire(self, now: float) -> int:
        """Drop the endpoints idle for ``idle`` seconds (or past their ``valid_until``); how
        many went."""
        return self._endpoints.expire(now)
