"""How the bot is doing, for operations: ``/healthz`` (the event loop turns), ``/readyz`` (the
bot can take work: its SIP listeners are open, in external mode it is registered with a
registrar that answers, and its store answers a trivial query), and the record of the last
config reload that ``/admin/status`` and ``/metrics`` show."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

HEARTBEAT_INTERVAL = 1.0
"""Seconds between two beats of the loop-side heartbeat."""
HEARTBEAT_STALE = 5.0
"""Seconds after which a heartbeat that has not beaten means the loop is stuck or starved:
five missed beats, well past any GC pause or burst of work the loop should absorb."""
STORE_TIMEOUT = 0.5
"""Seconds the store may take to answer ``SELECT 1``: half of Kubernetes' default probe
timeout (1 s), so that a slow store shows as a reason rather than a probe that timed out."""


class Heartbeat:
    """A callback the loop runs every :data:`HEARTBEAT_INTERVAL`: its last beat, read by
    ``/healthz`` (answered from the same loop), says whether timers still fire on time."""

    def __init__(
        self,
        *,
        interval: float = HEARTBEAT_INTERVAL,
        stale: float = HEARTBEAT_STALE,
        clock: Callable[[], float] | None = None,
    ):
        self.interval = interval
        self.stale = stale
        self._clock = clock
        self.last: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.stop()  # one chain of beats, however often it is started
        if self._clock is None:
            self._clock = asyncio.get_running_loop().time
        self._beat()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _beat(self) -> None:
        assert self._clock is not None
        self.last = self._clock()
        self._handle = asyncio.get_running_loop().call_later(self.interval, self._beat)

    def age(self) -> float | None:
        """Seconds since the last beat; None before the first."""
        if self.last is None or self._clock is None:
            return None
        return self._clock() - self.last

    @property
    def healthy(self) -> bool:
        age = self.age()
        return age is not None and age <= self.stale


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One readiness check: its name, and why it failed (empty when it passed)."""

    name: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


class Listening(Protocol):
    def listening(self) -> dict[str, bool]: ...


class Registered(Protocol):
    @property
    def registered(self) -> bool: ...
    @property
    def answering(self) -> bool: ...


def listeners(endpoint: Listening) -> Check:
    listening = endpoint.listening()
    closed = sorted(transport for transport, up in listening.items() if not up)
    if not listening:
        return Check(name="listeners", reason="no SIP listener is configured")
    if closed:
        return Check(name="listeners", reason=f"not listening on {', '.join(closed)}")
    return Check(name="listeners")


def registration(registered: Registered | None) -> Check | None:
    """External mode only (None otherwise): registered, and the registrar still answers its
    keep-alive probes (a binding it cannot be reached through is no use)."""
    if registered is None:
        return None
    if not registered.registered:
        return Check(name="registration", reason="not registered with the registrar")
    if not registered.answering:
        return Check(name="registration", reason="the registrar does not answer")
    return Check(name="registration")


async def store(engine: AsyncEngine, timeout: float = STORE_TIMEOUT) -> Check:
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return Check(name="store", reason=f"no answer to SELECT 1 within {timeout:g} s")
    except Exception as exc:  # whatever the driver raises: the reason, not a 500
        return Check(name="store", reason=_first_line(exc))
    return Check(name="store")


async def readiness(
    endpoint: Listening, registered: Registered | None, engine: AsyncEngine
) -> list[Check]:
    """Every check, passed or not; the bot is ready when all passed."""
    checks = [listeners(endpoint), registration(registered), await store(engine)]
    return [check for check in checks if check is not None]


def _first_line(exc: BaseException) -> str:
    """The driver's own words (its first line), without SQLAlchemy's SQL and background
    link."""
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (message[0] if message else type(exc).__name__)[:200]
