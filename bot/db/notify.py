"""Listing-cache invalidation across the instances sharing one PostgreSQL (LISTEN/NOTIFY).

A write through any instance (a conference scheduled or cancelled) sends ``pg_notify`` on
:data:`CHANNEL` with the organizer, in the writing transaction, so PostgreSQL delivers it on
commit. Every instance LISTENs on its own connection (asyncpg, outside the engine's pool) and
drops that organizer's cached listing: a change shows everywhere at once, not after
``cache_seconds``.

While the listening connection is down, invalidations may be missed: the store then serves
listings with the cache off (every listing read from the database) and connects again after
``retry`` seconds, and every ``retry`` seconds until it can; once listening again, it forgets
every cached listing and turns the cache back on. A connection that dies silently is found by
a ``SELECT 1`` every ``ping`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("bot.db")

CHANNEL = "sipbot_listings"
NOTIFY = "SELECT pg_notify('sipbot_listings', :organizer)"
"""Run in the writing transaction; the payload is the organizer."""


class Invalidations:
    def __init__(
        self,
        dsn: str,
        *,
        changed: Callable[[str], None],
        all_changed: Callable[[], None],
        retry: float = 1.0,
        ping: float = 10.0,
    ):
        """``changed(organizer)`` on each notification; ``all_changed()`` once listening
        (again), since what changed meanwhile was not heard."""
        self._dsn = dsn
        self._changed = changed
        self._all_changed = all_changed
        self._retry = retry
        self._ping = ping
        self.pid: int | None = None
        """The listening connection's server process, None while there is none."""
        self._tried = False
        self._state = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self.pid is not None

    async def start(self) -> None:
        """Listen in the background; returns once the first attempt to connect is over."""
        self._task = asyncio.create_task(self._run())
        async with self._state:
            await self._state.wait_for(lambda: self._tried)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def until_listening(self, *, other_than: int | None = None) -> int:
        """The listening connection's server process, once there is one (other than
        ``other_than``: a new connection)."""
        async with self._state:
            await self._state.wait_for(lambda: self.pid not in (None, other_than))
        assert self.pid is not None
        return self.pid

    async def _set(self, pid: int | None) -> None:
        async with self._state:
            self.pid, self._tried = pid, True
            self._state.notify_all()

    async def _run(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(self._dsn, timeout=self._retry * 5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("db.listen_failed", error=str(exc) or type(exc).__name__)
                await self._set(None)
                await asyncio.sleep(self._retry)
                continue
            try:
                await self._listen(connection)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("db.listen_lost", error=str(exc) or type(exc).__name__)
            finally:
                await self._set(None)
                connection.terminate()
            await asyncio.sleep(self._retry)  # a server that drops every connection: no spin

    async def _listen(self, connection: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(CHANNEL, self._notified)
        self._all_changed()  # after LISTEN: a later change is heard, an earlier one is here
        pid = connection.get_server_pid()
        await self._set(pid)
        log.info("db.listening", channel=CHANNEL, pid=pid)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._ping)
                break
            await connection.execute("SELECT 1", timeout=self._ping)
        log.warning("db.listen_lost", error="connection closed")

    def _notified(self, _connection: Any, _pid: int, _channel: str, organizer: object) -> None:
        self._changed(str(organizer))
