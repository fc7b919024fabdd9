"""The admin HTTP API (aiohttp): password-guessing bans, seen and lifted.

Off unless ``admin.token`` is set; every request must carry ``Authorization: Bearer <token>``
(compared in constant time). It listens on loopback unless configured otherwise.

    GET    /admin/bans            the bans in force, as JSON
    DELETE /admin/bans/<address>  lift one at once (204; 404 when not banned)
    POST   /admin/reload          read config.yaml again (like SIGHUP): 200 with the settings
                                  that wait for a restart, 422 with the errors of a bad file
    GET    /metrics               Prometheus text format: the figures of bot.metrics
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector

from bot.config import AdminConfig, ConfigError
from bot.metrics import GuardCollector
from bot.reload import Reload
from bot.services.guard import AuthGuard

log = structlog.get_logger("bot.admin")


class AdminApi:
    def __init__(
        self, settings: AdminConfig, guard: AuthGuard, reload: Callable[[], Reload] | None = None
    ):
        self.settings = settings
        self.guard = guard
        self._reload = reload
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._registry = CollectorRegistry()
        self._registry.register(GuardCollector(guard))

    def add_collector(self, collector: Collector) -> None:
        """More figures for /metrics (bot.metrics.BotCollector, once the bot is built)."""
        self._registry.register(collector)

    async def start(self) -> None:
        token = self.settings.token
        if not token:
            log.info("admin.disabled", reason="no admin.token set")
            return
        app = web.Application(middlewares=[self._require_token])
        app.router.add_get("/admin/bans", self._list_bans)
        app.router.add_delete("/admin/bans/{address}", self._lift_ban)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/admin/reload", self._reload_config)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the bound one, when port 0 was asked
        if not _is_loopback(self.settings.host):
            log.warning("admin.not_loopback", host=self.settings.host)
        log.info("admin.started", host=self.settings.host, port=self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _require_token(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        expected = f"Bearer {self.settings.token}".encode()
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "send Authorization: Bearer <admin.token>"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

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

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _lift_ban(self, request: web.Request) -> web.Response:
        address = request.match_info["address"]
        if not self.guard.lift(address):
            return web.json_response({"error": f"{address} is not banned"}, status=404)
        return web.Response(status=204)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"
