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

from bot import eventloop
from bot.admin import AdminApi
from bot.announcements.watch import conference_subscriber
from bot.announcements.wiring import Announcements, build_announcements
from bot.calls.calls import Calls
from bot.calls.join import Joiner
from bot.calls.router import DialogRouter, NotMine
from bot.commands.dispatcher import Dispatcher
from bot.commands.registry import REGISTRY, Registry
from bot.commands.services import BotServices
from bot.conferencing.store import ConferenceStore, default_url
from bot.config import Config, ConfigError, SipConfig, load_config
from bot.config.watch import ConfigWatcher
from bot.control import ControlChannel, socket_path
from bot.datadir import data_dir as default_data_dir
from bot.datadir import prepare
from bot.im.encoding import ENCODINGS
from bot.im.service import ImService
from bot.reload import LastReload, Reload, Result, Trigger, merge, record
from bot.services.guard import AuthGuard
from bot.services.identity import GateSettings, IdentityGate
from bot.services.registrar import Registrar
from bot.services.registration import Registration
from bot.shutdown import RETRY_AFTER, run_steps
from bot.sip.message import Request, Response, make_response
from bot.sip.transaction import TimerConfig
from bot.sip.uri import SipUri, Uri, parse_uri
from bot.sip.validation import DEFAULT_CONTENT_TYPES, UasPolicy
from bot.sounds.library import Sounds
from bot.sounds.sound import Sound
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from bot.transport.limits import StreamLimits
from bot.transport.resolver import Resolver
from bot.transport.tls import TlsConfig
from bot.wiring import conference_pool
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


def _unavailable(request: Request, why: str, retry_after: int) -> Response:
    """503 with Retry-After (RFC 3261 §21.5.4): not now, in ``retry_after`` seconds."""
    response = make_response(request, 503, f"Service Unavailable ({why})")
    response.headers.add("Retry-After", str(retry_after))
    return response


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
        self.store = ConferenceStore(
            config.conferences.database_url or default_url(prepare(data_dir or default_data_dir())),
            cache_seconds=config.conferences.cache_seconds,
            dial_in=config.conferences.dial_in,
        )
        self.endpoints, self.registering = conference_pool(config, self.endpoint, self.store)
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
        self.admin = AdminApi(config.admin, self.guard, self.reload_file, bot=self)
        self.control = ControlChannel(socket_path(data_dir), self.guard) if data_dir else None
        self.watcher: ConfigWatcher | None = None
        """Follows the config file (reload.watch), when the bot runs from one."""
        self.reloads: Counter[Result] = Counter()
        """Reloads by result, whatever triggered them (for /metrics and /admin/status)."""
        self.last_reload: LastReload | None = None
        self.stopping = False
        """Set at shutdown: new out-of-dialog requests are refused (503, Retry-After)."""
        self._our_hosts: tuple[SipConfig | None, frozenset[str | None] | None] = (None, None)
        """(the ``sip`` settings, the hosts a user-less Request-URI names us by under them:
        None for any) - see _addressed_to_us."""

    async def start(self) -> None:
        await self.store.open()
        if self.config.conferences.demo_data:
            await self.store.seed_demo(self.config.sip.domain, datetime.now(UTC))
        self.endpoint.admit = self.gate.admits
        await self.endpoint.start()
        self.im = ImService(
            self.endpoint, self.config, self.dispatcher.dispatch, self.registrar, self.gate
        )
        self.endpoint.on_ack = self.im.on_ack
        self.im.start()
        if self.config.sip.mode == "external":
            self.registration = Registration(self.endpoint, self.config)
            self.registration.start()
        await self._start_announcements()
        await self.admin.start()
        if self.control is not None:
            await self.control.start()
        if self.config_path is not None and self.config.reload.watch:
            self.watcher = ConfigWatcher(self.config_path, lambda: self.reload_file("file"))
            self.watcher.start()
        transports = sorted({item.transport.upper() for item in self.config.sip.listen})
        listen = ["{}:{}:{}".format(t.lower(), *self.endpoint.address(t)) for t in transports]
        tune_gc()
        log.info(
            "bot.started",
            identity=self.config.sip.identity,
            mode=self.config.sip.mode,
            listen=listen,
            event_loop=eventloop.name(asyncio.get_running_loop()),
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
        """Stop within ``shutdown.deadline`` (bot.shutdown): new work refused at once, then
        calls ended, replies in flight sent, IM sessions ended, the registration removed;
        listeners and the store closed last."""
        self.stopping = True
        if self.watcher is not None:
            await self.watcher.close()
        im, registration, registering = self.im, self.registration, self.registering
        ending = [
            ("announcement rules", self._stop_rules),
            ("calls", self.calls.close),
            *([("replies in flight", im.drain), ("IM sessions", im.close)] if im else []),
            *([("registration", registration.stop)] if registration else []),
            *([("user endpoints", registering.close)] if registering else []),
        ]
        closing = [
            ("admin API", self.admin.close),
            *([("control socket", self.control.close)] if self.control else []),
            ("SIP listeners", self.endpoint.close),
            ("store", self.store.close),
        ]
        cut = await run_steps(ending, closing, self.config.shutdown.deadline)
        log.info("bot.stopped", cut=cut)

    async def _stop_rules(self) -> None:
        if self.announcements is not None:
            await self.announcements.scheduler.close()
        if self._rules is not None:
            self._rules.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rules

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def reload_file(self, trigger: Trigger = "api") -> Reload:
        """Read the config file again and apply it: the one path of every trigger (the file
        watcher, SIGHUP, POST /admin/reload). Raises ConfigError - and changes nothing - when
        the file is not valid."""
        if self.config_path is None:
            raise ConfigError(["running on the embedded defaults: no config file to reload"])
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            self._refused(trigger, exc.messages)
            raise
        return self.reload(new, trigger)

    def reload(self, new: Config, trigger: Trigger = "direct") -> Reload:
        """Apply ``new``: live settings at once, the rest at the next restart (bot.reload).
        Atomic: every piece of new state is built first - anything invalid raises ConfigError
        with nothing changed - and swapped in last, by steps that cannot fail."""
        try:
            outcome = merge(self.config, new)
            config = outcome.config
            zone = ZoneInfo(config.conferences.time_zone)
            gate = GateSettings.of(config)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            error = ConfigError([f"reload refused, nothing changed: {exc}"])
            self._refused(trigger, error.messages)
            raise error from exc
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
        self._recorded(record(trigger, restart_needed=outcome.restart_needed))
        log.info("config.reloaded", trigger=trigger, restart_needed=list(outcome.restart_needed),
                 sessions_ended_for=sorted(ended))  # fmt: skip
        return outcome

    def _refused(self, trigger: Trigger, errors: list[str]) -> None:
        self._recorded(record(trigger, errors=errors))
        log.error("config.reload_failed", trigger=trigger, errors=errors)

    def _recorded(self, outcome: LastReload) -> None:
        self.reloads[outcome["result"]] += 1
        self.last_reload = outcome

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

    def _route(self, incoming: ServerRequest) -> Response | None:
        """Every request the endpoint hands us; answered at once, work goes to tasks."""
        request = incoming.request
        in_dialog = request.to.tag is not None
        if in_dialog:
            routed = self.router.route(incoming)  # the bot's own calls and subscriptions
            if not isinstance(routed, NotMine):
                return routed
        elif self.stopping and request.method not in ("ACK", "CANCEL"):
            # no new work while stopping: elsewhere, or here again after the restart (§21.5.4)
            return _unavailable(request, "stopping", RETRY_AFTER)
        if request.method == "REGISTER" and self.registrar is not None:
            return self.registrar.register(incoming, asyncio.get_running_loop().time())
        if request.method == "OPTIONS" and not in_dialog:
            response = make_response(request, 200)  # RFC 3261 §11.2
            response.headers.add("Allow", ", ".join(sorted(self.endpoint.layer.policy.methods)))
            response.headers.add("Accept", "text/plain, text/html, application/sdp")
            return response
        im = self.im
        if im is None:
            # starting: the endpoint listens (a proxy's OPTIONS probes are answered above)
            # before the IM service exists; anything else is asked again in a moment (§21.5.4)
            return None if request.method == "ACK" else _unavailable(request, "starting", 1)
        if in_dialog:
            return im.in_dialog(incoming)
        if not self._addressed_to_us(request.uri):
            # RFC 3261 §8.2.2.1: a Request-URI we do not accept requests for gets 404; the bot
            # is no proxy, and a message for alice is not a command for the bot
            return make_response(request, 404, "Not Found (not this bot)")
        return im.out_of_dialog(incoming)

    def _addressed_to_us(self, uri: Uri) -> bool:
        """The bot's own URI (any host: proxies and clients name it by domain or address), or
        a user-less URI naming one of our hosts (``sip:127.0.0.1:5060``)."""
        if not isinstance(uri, SipUri):
            return False
        sip = self.config.sip
        if uri.user is not None:
            return uri.user == sip.user
        of, hosts = self._our_hosts
        if of is not sip:  # worked out once per configuration (a reload brings a new one)
            listening = {item.host.strip("[]") for item in sip.listen}
            # a wildcard listener: any of the machine's addresses is ours (None)
            wildcard = bool(listening & {"0.0.0.0", "::"})
            hosts = None if wildcard else frozenset({sip.domain, sip.advertise, *listening})
            self._our_hosts = (sip, hosts)
        return hosts is None or uri.host.strip("[]") in hosts
