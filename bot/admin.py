"""The admin HTTP listener (aiohttp), on by default on ``admin.host:admin.port`` (loopback).

Probes and metrics, for the tools ops already run (no token: they say nothing secret):

    GET    /healthz               200 while the event loop turns (a loop-side heartbeat is
                                  recent), else 503
    GET    /readyz                200 when the bot can take work; 503 with JSON naming each
                                  failing check and why (bot.health)
    GET    /metrics               Prometheus text format: the figures of bot.metrics

The admin API, only with ``Authorization: Bearer <admin.token>`` (compared in constant time;
401 without a word otherwise), and refused altogether while no token is set:

    GET    /admin/status          how the bot is doing, as JSON (what ``status`` summarises)
    GET    /admin/bans            the bans in force, as JSON
    DELETE /admin/bans/<address>  lift one at once (204; 404 when not banned)
    POST   /admin/reload          read config.yaml again (like SIGHUP): 200 with the settings
                                  that wait for a restart, 422 with the errors of a bad file
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from bot import __version__
from bot.config import AdminConfig, Config, ConfigError
from bot.health import Heartbeat, readiness
from bot.metrics import Bot, BotCollector, GuardCollector, HeartbeatCollector
from bot.reload import LastReload, Reload, Result
from bot.services.guard import AuthGuard

log = structlog.get_logger("bot.admin")
ADMIN = "/admin/"
"""Paths under this prefix need the token."""


class Operated(Bot, Protocol):
    """The running bot (bot.runtime.Runtime) as the admin listener reads it."""

    @property
    def config(self) -> Config: ...
    @property
    def started(self) -> float: ...
    @property
    def reloads(self) -> Counter[Result]: ...
    @property
    def last_reload(self) -> LastReload | None: ...
    def status(self) -> dict[str, Any]: ...


class AdminApi:
    def __init__(
        self,
        settings: AdminConfig,
        guard: AuthGuard,
        reload: Callable[[], Reload] | None = None,
        *,
        bot: Operated | None = None,
        heartbeat: Heartbeat | None = None,
    ):
        """``bot``: what /readyz, /admin/status and most of /metrics read (None: a guard
        alone, /readyz then has nothing to check)."""
        self.settings = settings
        self.guard = guard
        self.bot = bot
        self.heartbeat = heartbeat or Heartbeat()
        self._reload = reload
        self._runner: web.AppRunner | None = None
        self._failing: dict[str, str] = {}
        """The checks /readyz found failing last time."""
        self.port: int | None = None
        self._registry = CollectorRegistry()
        self._registry.register(GuardCollector(guard))
        self._registry.register(HeartbeatCollector(self.heartbeat))
        if bot is not None:
            self._registry.register(BotCollector(bot))

    def add_collector(self, collector: Collector) -> None:
        """More figures for /metrics."""
        self._registry.register(collector)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._require_token])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/admin/status", self._status)
        app.router.add_get("/admin/bans", self._list_bans)
        app.router.add_delete("/admin/bans/{address}", self._lift_ban)
        app.router.add_post("/admin/reload", self._reload_config)
        app.on_startup.append(self._beat)
        app.on_cleanup.append(self._stop_beating)
        return app

    async def start(self) -> None:
        """Listen; when the address cannot be had, say so (``admin.unavailable``) and let the
        bot run on without its probes: the SIP service matters more, and a probe that gets
        no answer is how the supervisor notices."""
        if not self.settings.enabled:
            log.info("admin.disabled", reason="admin.enabled is false")
            return
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self.close()
            log.error("admin.unavailable", host=self.settings.host, port=self.settings.port,
                      reason=exc.strerror or str(exc))  # fmt: skip
            return
        self.port = int(self._runner.addresses[0][1])  # the bound one, when port 0 was asked
        if not _is_loopback(self.settings.host):
            log.warning("admin.not_loopback", host=self.settings.host)
        log.info("admin.started", host=self.settings.host, port=self.port,
                 api="on" if self.settings.token else "off (no admin.token)")  # fmt: skip

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _beat(self, app: web.Application) -> None:
        self.heartbeat.start()

    async def _stop_beating(self, app: web.Application) -> None:
        self.heartbeat.stop()

    @web.middleware
    async def _require_token(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not _admin_path(request):
            return await handler(request)
        token = self.settings.token
        if not token:
            return web.Response(status=403, text="the admin API is off: no admin.token is set\n")
        expected = f"Bearer {token}".encode()
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            # RFC 6750 §3: the scheme, and nothing about what was wrong
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    # --- probes --------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        age = self.heartbeat.age()
        shown = None if age is None else round(age, 3)
        if not self.heartbeat.healthy:
            return web.json_response({"ok": False, "heartbeat_age": shown}, status=503)
        return web.json_response({"ok": True, "heartbeat_age": shown})

    async def _readyz(self, request: web.Request) -> web.Response:
        bot = self.bot
        if bot is None:
            body = {"ready": False, "failing": {"bot": "not running"}}
            return web.json_response(body, status=503)
        checks = await readiness(bot.endpoint, bot.registration, bot.store.engine)
        failing = {check.name: check.reason for check in checks if not check.ok}
        body = {"ready": not failing, "checks": [c.name for c in checks], "failing": failing}
        if failing.keys() != self._failing.keys():  # logged when it changes, not every probe
            log.info("admin.readiness_changed", ready=not failing, failing=failing)
        self._failing = failing
        return web.json_response(body, status=503 if failing else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # --- the admin API -------------------------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        bot = self.bot
        if bot is None:
            return web.json_response({"error": "no bot is running here"}, status=404)
        return web.json_response(status_of(bot))

    async def _list_bans(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        return web.json_response(
            {
                "bans": [ban.describe(now) for ban in self.guard.bans(now)],
                "auth_failures_total": dict(self.guard.failures_total),
                "dropped_requests": self.guard.dropped,
            }
        )

    async def _reload_config(self, request: web.Request) -> web.Response:
        if self._reload is None:
            return web.json_response({"error": "reload is not available here"}, status=404)
        try:
            outcome = self._reload()
        except ConfigError as exc:
            return web.json_response(
                {"error": "config not valid", "errors": exc.messages}, status=422
            )
        return web.json_response({"reloaded": True, "restart_needed": outcome.restart_needed})

    async def _lift_ban(self, request: web.Request) -> web.Response:
        address = request.match_info["address"]
        if not self.guard.lift(address):
            return web.json_response({"error": f"{address} is not banned"}, status=404)
        return web.Response(status=204)


def status_of(bot: Operated) -> dict[str, Any]:
    """/admin/status: the ``status`` command's figures as they are (``status``), and what
    ops need beside them."""
    registrar, registration, im = bot.registrar, bot.registration, bot.im
    last = bot.last_reload
    return {
        "version": __version__,
        "mode": bot.config.sip.mode,
        "uptime_seconds": round(time.monotonic() - bot.started, 1),
        "status": bot.status(),
        "registrations": {
            "registered_users": registrar.registered_users if registrar else None,
            "registered_with_server": registration.registered if registration else None,
            "server_answering": registration.answering if registration else None,
        },
        "sessions": im.session_count if im else 0,
        "calls": len(bot.calls),
        "user_endpoints": len(bot.endpoints),
        "reloads": dict(bot.reloads),
        "last_reload": dict(last) if last else None,
    }


def _admin_path(request: web.Request) -> bool:
    """Under /admin/: by the path as asked (an unknown admin path is no 404 for a stranger) or
    as routed (however it was spelt)."""
    resource = request.match_info.route.resource
    routed = resource.canonical if resource is not None else ""
    return request.path.startswith(ADMIN) or routed.startswith(ADMIN)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"
