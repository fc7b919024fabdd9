"""Wires the bot together: endpoint, registrar or registration, conferences, commands, IM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import time
from collections import Counter
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from bot.admin import AdminApi
from bot.announcements.watch import conference_subscriber
from bot.announcements.wiring import Announcements, build_announcements
from bot.calls.calls import Calls
from bot.calls.join import Joiner
from bot.calls.router import DialogRouter, NotMine
from bot.commands.dispatcher import Dispatcher
from bot.commands.registry import REGISTRY, Registry
from bot.commands.services import BotServices
from bot.conferencing.acting import Registering, load_credentials, mode_of
from bot.conferencing.c3p import C3pBackend
from bot.conferencing.endpoints import UserEndpointPool
from bot.conferencing.store import ConferenceStore, default_url
from bot.config import Config, ConfigError, load_config
from bot.control import ControlChannel, socket_path
from bot.datadir import data_dir as default_data_dir
from bot.datadir import prepare
from bot.health import ReloadRecord, ReloadResult
from bot.im.encoding import ENCODINGS
from bot.im.service import ImService
from bot.reload import Reload, merge
from bot.services.guard import AuthGuard
from bot.services.identity import GateSettings, IdentityGate
from bot.services.registrar import Registrar
from bot.services.registration import Registration
from bot.sip.message import Response, make_response
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.uri import SipUri, Uri, parse_uri
from bot.sip.validation import DEFAULT_CONTENT_TYPES, UasPolicy
from bot.sounds.library import Sounds
from bot.sounds.sound import Sound
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from bot.transport.limits import StreamLimits
from bot.transport.resolver import Resolver
from bot.transport.tls import TlsConfig
from handlers import BUILTIN

log = structlog.get_logger("bot.runtime")
GC_THRESHOLD = 10_000
METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "INFO", "UPDATE", "NOTIFY", "BENOTIFY"}
)
"""Methods the endpoint takes: NOTIFY and BENOTIFY for the bot's subscriptions (RFC 6665
§4.1.3; ms-benotify, LYNC.md §2.2) - outside a subscription they get 405 or 481."""
EXTENSIONS = frozenset({"timer"})
"""Option tags a Require may name (RFC 3261 §8.2.2.3): session timers (RFC 4028) in calls."""


ENTRY_POINT_GROUP = "sipbot.handlers"


def load_handlers(config: Config | None = None) -> Registry:
    """Import the built-in handler modules, those listed in ``commands.modules`` and those
    announced in the ``sipbot.handlers`` entry-point group: each registers its commands.
    Raises :class:`ConfigError` naming a module that cannot be imported."""
    modules = list(BUILTIN)
    if config is not None:
        modules += config.commands.modules
        if config.commands.entry_points:
            modules += [ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ConfigError([f"commands.modules: cannot import {name!r}: {exc}"]) from exc
    return REGISTRY


def endpoint_config(config: Config) -> EndpointConfig:
    sip = config.sip
    methods = METHODS | ({"REGISTER"} if sip.mode == "embedded" else set())
    outbound: SipUri | None = None
    if sip.mode == "external" and config.registrar.server:
        parsed = parse_uri(config.registrar.server)
        outbound = parsed if isinstance(parsed, SipUri) else None
    return EndpointConfig(
        listen=tuple(
            Listen(
                transport=item.transport.upper(),
                host=item.host,
                port=item.port,
                advertise=sip.advertise,
            )
            for item in sip.listen
        ),
        timers=TimerConfig(t1=sip.timers.t1, t2=sip.timers.t2, t4=sip.timers.t4),
        policy=UasPolicy(
            methods=frozenset(methods),
            extensions=EXTENSIONS,
            content_types=DEFAULT_CONTENT_TYPES,
            content_encodings=ENCODINGS,
        ),
        tls=TlsConfig(**sip.tls.model_dump()),
        limits=StreamLimits(**sip.limits.model_dump()),
        outbound_proxy=outbound,
        user_agent="sipbot",
    )


def tune_gc() -> None:
    """Garbage collection for a server that keeps thousands of transactions alive (RFC 3261
    Timer J holds each for 32 s): what start-up built is frozen out of every scan, and the
    young generation is collected every GC_THRESHOLD allocations instead of every 700, which
    took an eighth of the CPU of an IM command (measured with bench/sipp_im_bench.py)."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


class Runtime:
    def __init__(
        self,
        config: Config,
        registry: Registry | None = None,
        config_path: Path | None = None,
        data_dir: Path | None = None,
    ):
        """``data_dir``: where the default database lives, and the control socket (none
        without a data dir)."""
        self.config = config
        self.config_path = config_path
        self.registry = registry if registry is not None else load_handlers(config)
        self.started = time.monotonic()
        dns = config.sip.dns  # RFC 3263 look-ups: these name servers, else the system's
        self.endpoint = SipEndpoint(
            endpoint_config(config),
            handler=self._route,
            resolver=Resolver(nameservers=list(dns.nameservers) or None, port=dns.port),
        )
        self.guard = AuthGuard(config.security.auth, config.sip.trusted_proxies)
        self.gate = IdentityGate(config, self.guard)
        self.registrar = Registrar(config, self.gate) if config.sip.mode == "embedded" else None
        self.registration: Registration | None = None
        self.registering: Registering | None = None
        """User endpoints' registrations (conferences.endpoints.mode: registered)."""
        self.store = ConferenceStore(
            config.conferences.database_url or default_url(prepare(data_dir or default_data_dir())),
            cache_seconds=config.conferences.cache_seconds,
            dial_in=config.conferences.dial_in,
        )
        self.endpoints = self._conferences()
        self.router = DialogRouter(self.gate)
        """In-dialog requests of the dialogs the bot originates (bot.calls)."""
        self.calls = Calls(self.endpoint, config, self.router, registrar=self.registrar)
        self.sounds = Sounds(config.sounds, data_dir)
        self.services = BotServices(
            zone=ZoneInfo(config.conferences.time_zone),
            endpoints=self.endpoints,
            status=self.status,
            calls=self.calls,
            sounds=self.sounds,
        )
        self.announcements: Announcements[Sound] | None = None
        """Set up at start: the announcer of ``announce``/``play`` and the rules' scheduler."""
        self._rules: asyncio.Task[None] | None = None
        self.dispatcher = Dispatcher(config, self.registry, self.services)
        self.im: ImService | None = None
        self.reloads: Counter[str] = Counter()
        """Reloads by result (bot.health.RELOAD_RESULTS): for /metrics."""
        self.last_reload: ReloadRecord | None = None
        """The last reload, for /admin/status."""
        self.admin = AdminApi(config.admin, self.guard, self.reload_file, bot=self)
        self.control = ControlChannel(socket_path(data_dir), self.guard) if data_dir else None

    def _conferences(self) -> UserEndpointPool:
        """Where conferences live (the SQL store, or a focus factory over C3P) and how each
        user's endpoint acts for its user (bot.conferencing.acting)."""
        config = self.config
        settings = config.conferences
        mode = mode_of(config)
        pool = settings.endpoints
        if settings.backend == "store":
            if mode != "embedded":
                raise ConfigError([f"conferences.endpoints.mode: {mode} needs backend c3p"])
            return UserEndpointPool(self.store, size=pool.size, idle=pool.idle_seconds)
        if mode == "embedded":
            raise ConfigError(["conferences.endpoints.mode: embedded needs backend store"])
        server = settings.c3p.server or config.registrar.server
        uri = parse_uri(server) if server else None
        if not isinstance(uri, SipUri):
            raise ConfigError(
                ["conferences.c3p.server: the c3p backend needs a sip: URI (or registrar.server)"]
            )
        peer = Peer((uri.transport or "udp").upper(), uri.host.strip("[]"), uri.port or 5060)
        if mode == "trusted":
            backend = C3pBackend(
                self.endpoint, peer, timeout=settings.c3p.timeout, schedules=self.store
            )
            return UserEndpointPool(backend, size=pool.size, idle=pool.idle_seconds)
        registering = Registering(
            self.endpoint, peer, load_credentials(config), pool.register_expires
        )
        self.registering = registering
        backend = C3pBackend(
            self.endpoint,
            peer,
            timeout=settings.c3p.timeout,
            credentials=registering.credentials,
            schedules=self.store,
        )
        return UserEndpointPool(
            backend, establish=registering, size=pool.size, idle=pool.idle_seconds
        )

    async def start(self) -> None:
        await self.store.open()
        if self.config.conferences.demo_data:
            await self.store.seed_demo(self.config.sip.domain, datetime.now(UTC))
        self.endpoint.admit = self.gate.admits
        await self.endpoint.start()
        self.im = ImService(self.endpoint, self.config, self._answer, self.registrar, self.gate)
        self.endpoint.on_ack = self.im.on_ack
        self.im.start()
        if self.config.sip.mode == "external":
            self.registration = Registration(self.endpoint, self.config)
            self.registration.start()
        await self._start_announcements()
        await self.admin.start()
        if self.control is not None:
            await self.control.start()
        transports = sorted({item.transport.upper() for item in self.config.sip.listen})
        listen = ["{}:{}:{}".format(t.lower(), *self.endpoint.address(t)) for t in transports]
        tune_gc()
        log.info(
            "bot.started",
            identity=self.config.sip.identity,
            mode=self.config.sip.mode,
            listen=listen,
        )

    async def _start_announcements(self) -> None:
        joiner = Joiner(self.calls, self.router, self.config)
        self.announcements = await build_announcements(
            joiner=joiner,
            sounds=self.sounds,
            calls=self.calls,
            store=self.store,
            engine=self.store.engine,
            settings=self.config.announcements,
            subscribe=conference_subscriber(
                self.endpoint,
                self.router,
                local=joiner.me,
                contact=self.endpoint.contact(self.config.sip.user),
            ),
            me=joiner.me,
        )
        self.services.announcer = self.announcements.announcer
        self._rules = asyncio.create_task(self.announcements.scheduler.run())

    async def stop(self) -> None:
        if self.control is not None:
            await self.control.close()
        await self.admin.close()
        if self.registration is not None:
            await self.registration.stop()
        if self.registering is not None:
            await self.registering.close()
        if self.announcements is not None:
            await self.announcements.scheduler.close()
        if self._rules is not None:
            self._rules.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rules
        await self.calls.close()
        if self.im is not None:
            await self.im.close()
        await self.endpoint.close()
        await self.store.close()
        log.info("bot.stopped")

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def reload_file(self) -> Reload:
        """Read the config file again and apply it (SIGHUP, POST /admin/reload). Raises
        ConfigError - and changes nothing - when the file is not valid."""
        if self.config_path is None:
            raise ConfigError(["running on the embedded defaults: no config file to reload"])
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("config.reload_failed", errors=exc.messages)
            self._reloaded("invalid", errors=tuple(exc.messages))
            raise
        return self.reload(new)

    def _reloaded(
        self, result: ReloadResult, *, restart_needed: tuple[str, ...] = (),
        errors: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.reloads[result] += 1
        self.last_reload = ReloadRecord(result=result, at=datetime.now(UTC),
                                        restart_needed=restart_needed, errors=errors)  # fmt: skip

    def reload(self, new: Config) -> Reload:
        """Apply ``new``: live settings at once, the rest at the next restart (bot.reload).
        Atomic: every piece of new state is built first - anything invalid raises ConfigError
        with nothing changed - and swapped in last, by steps that cannot fail."""
        try:
            outcome = merge(self.config, new)
            config = outcome.config
            zone = ZoneInfo(config.conferences.time_zone)
            gate = GateSettings.of(config)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            log.error("config.reload_failed", errors=[str(exc)])
            self._reloaded("invalid", errors=(f"reload refused, nothing changed: {exc}",))
            raise ConfigError([f"reload refused, nothing changed: {exc}"]) from exc
        ended = self.gate.changed_users(gate) if self.registrar is not None else set()
        # --- swap: nothing below raises
        self.config = config
        self.gate.apply(gate, config)
        self.dispatcher.reconfigure(config)
        self.calls.reconfigure(config)
        self.sounds.reconfigure(config.sounds)
        if self.announcements is not None:
            self.announcements.scheduler.reconfigure(config.announcements)
        if self.registrar is not None:
            self.registrar.reconfigure(config)
        if self.im is not None:
            self.im.reconfigure(config)
            self.im.end_sessions_of(ended)
        self.store.listings.ttl = config.conferences.cache_seconds
        self.services.zone = zone
        log.info("config.reloaded", restart_needed=list(outcome.restart_needed),
                 sessions_ended_for=sorted(ended))  # fmt: skip
        self._reloaded("restart_needed" if outcome.restart_needed else "ok",
                       restart_needed=outcome.restart_needed)  # fmt: skip
        return outcome

    def status(self) -> dict[str, Any]:
        return {
            "uptime": f"{time.monotonic() - self.started:.0f} s",
            "mode": self.config.sip.mode,
            "registered users": self.registrar.registered_users if self.registrar else "-",
            "registered with server": (self.registration.registered if self.registration
                                       else "-"),
            "IM sessions": self.im.session_count if self.im else 0,
            "calls": len(self.calls),
            "user endpoints": len(self.endpoints),
            "banned addresses": self.guard.active_bans(time.monotonic()),
        }  # fmt: skip

    async def _answer(self, sender: Any, text: str, call_id: str) -> str:
        return await self.dispatcher.dispatch(sender, text, call_id=call_id)

    def _route(self, incoming: ServerRequest) -> Response | None:
        """Every request the endpoint hands us; answered at once, work goes to tasks."""
        request = incoming.request
        if request.to.tag is not None:
            routed = self.router.route(incoming)  # the bot's own calls and subscriptions
            if not isinstance(routed, NotMine):
                return routed
        if request.method == "REGISTER" and self.registrar is not None:
            return self.registrar.register(incoming, asyncio.get_running_loop().time())
        if request.method == "OPTIONS" and request.to.tag is None:
            response = make_response(request, 200)  # RFC 3261 §11.2
            response.headers.add("Allow", ", ".join(sorted(self.endpoint.layer.policy.methods)))
            response.headers.add("Accept", "text/plain, text/html, application/sdp")
            return response
        if request.to.tag is None and not self._addressed_to_us(request.uri):
            # RFC 3261 §8.2.2.1: a Request-URI we do not accept requests for gets 404; the bot
            # is no proxy, and a message for alice is not a command for the bot
            return make_response(request, 404, "Not Found (not this bot)")
        assert self.im is not None
        return self.im.handle(incoming)

    def _addressed_to_us(self, uri: Uri) -> bool:
        """The bot's own URI (any host: proxies and clients name it by domain or address), or
        a user-less URI naming one of our hosts (``sip:127.0.0.1:5060``)."""
        if not isinstance(uri, SipUri):
            return False
        if uri.user is not None:
            return uri.user == self.config.sip.user
        sip = self.config.sip
        listening = {item.host.strip("[]") for item in sip.listen}
        if listening & {"0.0.0.0", "::"}:
            return True  # a wildcard listener: any of the machine's addresses is ours
        return uri.host.strip("[]") in {sip.domain, sip.advertise, *listening}
