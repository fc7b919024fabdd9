"""The bot's own registration with an external registrar (RFC 3261 §10.2): refresh before
expiry, jittered exponential back-off, re-registration when the server comes back,
un-registration on shutdown. The REGISTERs themselves - Call-ID, CSeq, 423, digest, the granted
lifetime - are the REGISTER client's (bot.services.register_client)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter

import structlog

from bot.config import Config
from bot.services.register_client import RegisterClient
from bot.sip.digest import DigestClient
from bot.sip.message import Request, new_call_id, new_request
from bot.sip.uri import SipUri
from bot.transport.endpoint import SipEndpoint

log = structlog.get_logger("bot.registration")
SHUTDOWN_WAIT = 5.0
"""Seconds the un-registration may take at shutdown."""


class Registration:
    def __init__(self, endpoint: SipEndpoint, config: Config, *, rng: random.Random | None = None):
        self.endpoint = endpoint
        self.config = config
        settings = config.registrar
        self.binding = RegisterClient(
            endpoint,
            user=config.sip.user,
            domain=config.sip.domain,
            credentials=DigestClient(settings.username or config.sip.user, settings.password or ""),
            expires=settings.expires,
        )
        self.registered = False
        self.answering = True
        """The registrar answered the last REGISTER or keep-alive probe (for /readyz)."""
        self.failures = 0
        self.outcomes: Counter[str] = Counter()
        """REGISTERs sent, by outcome: registered, refreshed (while registered), failed."""
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._running = False

    def start(self) -> None:
        self._running = True
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        # the flag ends the loops even when a cancellation is swallowed: on Python 3.11,
        # asyncio.wait_for loses it when the awaited request completes at the same moment
        self._running = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.registered:
            self.registered = False
            try:  # un-register (§10.2.2), without holding up the shutdown for long
                response = await asyncio.wait_for(self.binding.unregister(), SHUTDOWN_WAIT)
            except TimeoutError:
                log.warning("registration.remove_timed_out")
                return
            log.info("registration.removed", status=response.status)

    async def _run(self) -> None:
        settings = self.config.registrar
        while self._running:
            response = await self.binding.register()
            self.answering = response.status not in (408, 503)
            if self.binding.granted is not None:
                granted = self.binding.granted
                self.outcomes["refreshed" if self.registered else "registered"] += 1
                self.registered, self.failures = True, 0
                log.info("registration.succeeded", expires=granted)
                await self._hold(max(granted * 0.8, 1.0))
                continue
            self.registered = False
            self.failures += 1
            self.outcomes["failed"] += 1
            delay = min(settings.retry_max, settings.retry_min * 2 ** (self.failures - 1))
            delay *= self._rng.uniform(0.5, 1.0)  # jitter: many bots must not retry in step
            log.warning(
                "registration.failed",
                status=response.status,
                reason=response.reason,
                retry_in=round(delay, 2),
                failures=self.failures,
            )
            await asyncio.sleep(delay)

    async def _hold(self, seconds: float) -> None:
        """Wait until the refresh is due, probing the server with OPTIONS meanwhile: when it
        stops answering and comes back (a restart may have lost our binding), return early."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        interval = self.config.registrar.keepalive
        lost = False
        while self._running and (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(interval, left))
            if loop.time() >= deadline:
                return
            alive = self.answering = await self._probe()
            if not alive and not lost:
                log.warning("registration.server_lost")
            if alive and lost:
                log.info("registration.server_back")
                return
            lost = not alive

    async def _probe(self) -> bool:
        """Does the server answer at all? A full transaction timeout (64*T1) would be slow to
        notice a restart, so a probe gets between 1 and 5 seconds."""
        wait = min(max(self.config.registrar.keepalive, 1.0), 5.0)
        try:
            response = await asyncio.wait_for(self.endpoint.request(self._options()), wait)
        except TimeoutError:
            return False
        return response.status not in (408, 503)

    def _options(self) -> Request:
        """A keep-alive probe of the registrar (RFC 3261 §11): a request of its own."""
        sip = self.config.sip
        aor = f"<sip:{sip.user}@{sip.domain}>"
        return new_request(
            "OPTIONS", SipUri(host=sip.domain), from_=aor, to=aor, call_id=new_call_id(sip.domain)
        )
