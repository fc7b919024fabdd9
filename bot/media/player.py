"""Playing one sound on a stream: a packet at each of the pacer's deadlines (RFC 3550 §5.1
timing: the n-th packet at start + n × ptime), sent from event-loop timer callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator


class Player:
    """Sends one sound, a packet at each deadline, from event-loop timer callbacks: no task
    switch per packet (about 15 % less sender CPU than a task sleeping in ``Pacer.wait``,
    bench/announce_bench.py with 200 streams). ``done`` gets the slots that went by.

    ``deadline(slot)``: the loop time of a slot; ``send(slot, payload, first)``: put one packet
    on the wire; ``over()``: stop here (the stream closed, or its codec changed)."""

    def __init__(
        self,
        payloads: Iterator[bytes],
        first: int,
        *,
        deadline: Callable[[int], float],
        send: Callable[[int, bytes, bool], None],
        over: Callable[[], bool],
    ) -> None:
        self.payloads = payloads
        self.first, self.count = first, 0
        self._deadline, self._send, self._over = deadline, send, over
        loop = asyncio.get_running_loop()
        self.done: asyncio.Future[int] = loop.create_future()
        self.upcoming = next(payloads, None)  # encoded ahead of its deadline
        self.timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self.upcoming is None or self._over():
            self._finish()
            return
        deadline = self._deadline(self.first + self.count)
        self.timer = asyncio.get_running_loop().call_at(deadline, self._step)

    def _step(self) -> None:
        payload = self.upcoming
        if payload is None or self._over():
            self._finish()
            return
        try:
            self._send(self.first + self.count, payload, self.count == 0)
            self.count += 1
            self.upcoming = next(self.payloads, None)
        except Exception as exc:  # surfaces in play(), not in the loop's exception handler
            if not self.done.done():
                self.done.set_exception(exc)
            return
        self._arm()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(self.count)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
