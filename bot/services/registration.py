"""The bot's own registration with an external registrar (RFC 3261 §10.2): refresh before
expiry, 423 Min-Expires, digest, jittered exponential back-off, re-registration when the
server comes back, un-registration on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import random

import structlog

from bot.config import Config
from bot.sip.digest import DigestClient
from bot.sip.errors import SipParseError
from bot.sip.grammar import is_digits
from bot.sip.message import Request, Response, new_call_id, new_request
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
        self.expires = settings.expires
        self.credentials = DigestClient(
            settings.username or config.sip.user, settings.password or ""
        )
        self.registered = False
        self.failures = 0
        self._rng = rng or random.Random()
        self._call_id = new_call_id(config.sip.domain)
        self._cseq = 0
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
                response = await asyncio.wait_for(self._send(0), SHUTDOWN_WAIT)
            except TimeoutError:
                log.warning("registration.remove_timed_out")
                return
            log.info("registration.removed", status=response.status)

    async def _run(self) -> None:
        settings = self.config.registrar
        while self._running:
            response = await self._send(self.expires)
            if response.status == 423:  # §10.2.8: ask again with at least Min-Expires
                minimum = (response.headers.get("min-expires") or "").strip()
                if is_digits(minimum) and int(minimum) > self.expires:
                    self.expires = int(minimum)
                    continue
            if 200 <= response.status < 300:
                granted = self._granted(response)
                self.registered, self.failures = True, 0
                log.info("registration.succeeded", expires=granted)
                await self._hold(max(granted * 0.8, 1.0))
                continue
            self.registered = False
            self.failures += 1
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
            alive = await self._probe()
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
            response = await asyncio.wait_for(
                self.endpoint.request(self._request("OPTIONS", None)), wait
            )
        except TimeoutError:
            return False
        return response.status not in (408, 503)

    async def _send(self, expires: int) -> Response:
        return await self.endpoint.request(
            self._request("REGISTER", expires), credentials=self.credentials
        )

    def _request(self, method: str, expires: int | None) -> Request:
        sip = self.config.sip
        self._cseq += 1
        aor = f"<sip:{sip.user}@{sip.domain}>"
        if method != "REGISTER":
            return new_request(
                method, SipUri(host=sip.domain), from_=aor, to=aor, call_id=new_call_id(sip.domain)
            )
        return new_request(
            method,
            SipUri(host=sip.domain),
            from_=aor,
            to=aor,
            call_id=self._call_id,
            cseq=self._cseq,
            contact=self.endpoint.contact(sip.user),
            headers=[("Expires", str(expires))],
        )

    def _granted(self, response: Response) -> int:
        """The lifetime the registrar granted our contact (RFC 3261 §10.2.4), read leniently:
        an unreadable Contact or Expires leaves the one we asked for."""
        mine = self.endpoint.contact(self.config.sip.user).uri
        try:
            contacts = response.contacts
        except SipParseError:
            contacts = []
        for contact in contacts:
            value = contact.param("expires")
            if contact.uri == mine and value and is_digits(value):
                return int(value)
        header = (response.headers.get("expires") or "").strip()
        return int(header) if is_digits(header) else self.expires
