"""config.yaml's schema: one frozen pydantic model per section, each checked as it is built
(the sections of calls and announcements are in bot.config.announcing, what they all share in
bot.config.base).

The defaults below *are* the embedded defaults: ``sipbot run`` with no config file runs on them,
and the shipped ``config.yaml`` spells them out (a test keeps the two equal). Reading a file
into them is bot.config.loading's.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)

from bot.config.announcing import (
    AnnouncementsConfig,
    CallsConfig,
    MediaConfig,
    SoundsConfig,
)
from bot.config.base import Problem as _Problem
from bot.config.base import Section as _Section
from bot.config.base import time_zone as _time_zone


class ListenConfig(_Section):
    transport: Literal["udp", "tcp", "tls"] = "udp"
    host: str = "127.0.0.1"
    port: int = Field(5060, ge=0, le=65535)


class TlsSettings(_Section):
    certfile: Path | None = None
    keyfile: Path | None = None
    cafile: Path | None = None
    verify: bool = True
    require_client_cert: bool = False


class TimersConfig(_Section):
    t1: float = Field(0.5, gt=0)
    t2: float = Field(4.0, gt=0)
    t4: float = Field(5.0, gt=0)


class LimitsConfig(_Section):
    """TCP/TLS connections others open to the bot (issue 15 item 8); see
    ``bot.transport.sockets.StreamLimits`` for why each default."""

    max_connections: int = Field(900, ge=1)
    """Inbound connections held at once, all sources together (below the usual 1024 files)."""
    max_connections_per_source: int = Field(32, ge=1)
    """Inbound connections held at once from one address (raise it for a big office NAT)."""
    idle_timeout: float = Field(900.0, gt=0)
    """Seconds of silence after which an inbound connection is closed (RFC 5626 clients ping
    every 95-120 s; longer than a default registration)."""
    header_timeout: float = Field(10.0, gt=0)
    """Seconds an inbound connection may hold an incomplete message (slow-loris) or, once
    accepted, send nothing complete."""


class DnsConfig(_Section):
    """Where the bot looks up SIP servers (RFC 3263: NAPTR, SRV, A/AAAA) it sends to, such as
    ``registrar.server`` without a port. Changing these needs a restart."""

    nameservers: tuple[str, ...] = ()
    """IP addresses of the name servers to ask, in order; empty: the system's (resolv.conf)."""
    port: int = Field(53, ge=1, le=65535)
    """The port those name servers answer on (unused with the system's)."""

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        for item in items:
            try:
                ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return items


class SipConfig(_Section):
    mode: Literal["embedded", "external"] = "embedded"
    domain: str = "example.test"
    user: str = "bot"
    display_name: str = "sipbot"
    listen: tuple[ListenConfig, ...] = (
        ListenConfig(transport="udp"),
        ListenConfig(transport="tcp"),
    )
    advertise: str | None = None
    tls: TlsSettings = TlsSettings()
    trusted_proxies: tuple[str, ...] = ()
    timers: TimersConfig = TimersConfig()
    limits: LimitsConfig = LimitsConfig()
    dns: DnsConfig = DnsConfig()

    @model_validator(mode="after")
    def _tls_has_a_certificate(self) -> SipConfig:
        for index, item in enumerate(self.listen):
            if item.transport == "tls" and self.tls.certfile is None:
                raise _Problem(
                    "a tls listener needs a certificate: set sip.tls.certfile (and keyfile)",
                    path=("listen", index, "transport"),
                )
        return self

    @property
    def identity(self) -> str:
        return f"sip:{self.user}@{self.domain}"


class UserConfig(_Section):
    password: str
    display_name: str | None = None


def _demo_users() -> dict[str, UserConfig]:
    return {
        "alice": UserConfig(password="alice-demo", display_name="Alice"),
        "bob": UserConfig(password="bob-demo", display_name="Bob"),
    }


class RegistrarConfig(_Section):
    users: dict[str, UserConfig] = Field(default_factory=_demo_users)
    realm: str | None = None
    min_expires: int = Field(60, ge=1)
    max_expires: int = Field(3600, ge=1)
    default_expires: int = Field(600, ge=1)
    digest_algorithms: tuple[Literal["MD5", "SHA-256"], ...] = ("MD5",)
    max_bindings: int = Field(10, ge=1, le=1000)
    """Contacts one user may have registered (and list in one REGISTER); more: 403."""
    server: str | None = None
    username: str | None = None
    password: str | None = None
    expires: int = Field(600, ge=60)
    keepalive: float = Field(30.0, gt=0)
    retry_min: float = Field(1.0, gt=0)
    retry_max: float = Field(60.0, gt=0)

    @field_validator("users")
    @classmethod
    def _user_names(cls, users: dict[str, UserConfig]) -> dict[str, UserConfig]:
        for name in users:
            if not re.fullmatch(r"[A-Za-z0-9._+-]+", name):
                raise ValueError(f"user name {name!r} may hold only letters, digits and ._+-")
        return users


class AuthSecurityConfig(_Section):
    max_failures: int = Field(10, ge=1)
    window: float = Field(60.0, gt=0)
    ban: float = Field(600.0, gt=0)
    ban_max: float = Field(86_400.0, gt=0)
    user_max_failures: int = Field(5, ge=1)
    user_delay: float = Field(2.0, ge=0, le=30)
    allow: tuple[str, ...] = ()
    nonce_lifetime: float = Field(300.0, gt=0)

    @field_validator("allow")
    @classmethod
    def _networks(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (CIDR)") from None
        return items


class SecurityConfig(_Section):
    auth: AuthSecurityConfig = AuthSecurityConfig()


class AdminConfig(_Section):
    enabled: bool = True
    """The admin listener: /healthz, /readyz, /metrics (no token) and /admin/* (token)."""
    host: str = "127.0.0.1"
    """Loopback by default; any other address is an explicit choice (logged as a warning)."""
    port: int = Field(8089, ge=0, le=65535)
    token: str | None = None
    """Bearer token of /admin/*; unset: /admin/* is refused (the probes still answer)."""


class FeaturesConfig(_Section):
    help: bool = True
    my_meetings: bool = True
    meeting: bool = True
    schedule: bool = True
    cancel: bool = True
    status: bool = True
    announce: bool = True
    play: bool = True
    hide_disabled: bool = False


def _demo_admins() -> tuple[str, ...]:
    return ("alice@example.test",)


class AclConfig(_Section):
    allowed_domains: tuple[str, ...] = ("example.test",)
    admins: tuple[str, ...] = Field(default_factory=_demo_admins)
    """user@domain; a bare user name means that user of ``sip.domain``."""


class RateLimitConfig(_Section):
    rate: float = Field(5.0, gt=0)
    burst: int = Field(10, ge=1)


class LoopBreakerConfig(_Section):
    max_replies: int = Field(20, ge=1)
    window: float = Field(10.0, gt=0)


class ReceiptsConfig(_Section):
    send: bool = True
    request: bool = False


class TypingConfig(_Section):
    send: bool = False
    after: float = Field(1.0, ge=0)


class ImConfig(_Section):
    session_idle_timeout: float = Field(300.0, gt=0)
    max_sessions_per_sender: int = Field(10, ge=1, le=1000)
    """Open IM sessions one sender may hold; a new one closes their least recently used."""
    rate_limit: RateLimitConfig = RateLimitConfig()
    loop_breaker: LoopBreakerConfig = LoopBreakerConfig()
    automata: tuple[str, ...] = ()
    receipts: ReceiptsConfig = ReceiptsConfig()
    typing: TypingConfig = TypingConfig()


class EndpointsConfig(_Section):
    mode: Literal["auto", "trusted", "registered", "embedded"] = "auto"
    size: int = Field(10_000, ge=1)
    idle_seconds: float = Field(600.0, gt=0)
    credentials: dict[str, str] = Field(default_factory=dict)
    credentials_file: Path | None = None
    register_expires: int = Field(600, ge=60)


class C3pConfig(_Section):
    server: str | None = None
    timeout: float = Field(5.0, gt=0)
    digest: bool = False
    """The server takes Digest (a standards server: Kamailio, Asterisk). Lync / Skype for
    Business never do (NTLM, Kerberos, TLS-DSK only, MS-SIPAE): there the bot is a trusted
    application over mutual TLS, so ``endpoints.mode: registered`` needs this true."""


DATABASE_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
"""URL schemes the store can open, and the asyncio driver each one means."""


def _database_url(url: str | None) -> str | None:
    """A URL the store opens with its asyncio driver (``sqlite:`` means aiosqlite, ``postgresql:``
    asyncpg); None: ``sipbot.db`` in the data directory."""
    if url is None:
        return None
    scheme, separator, rest = url.partition("://")
    if not separator or scheme not in DATABASE_DRIVERS:
        known = ", ".join(f"{name}://" for name in DATABASE_DRIVERS)
        raise _Problem(f"the database URL must start with one of {known}", secret=True)
    return f"{DATABASE_DRIVERS[scheme]}://{rest}"


def _importable(name: str) -> str:
    """A module the bot can import at start (found, not imported: no side effects here)."""
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError("no such module on the Python path (sys.path) of this sipbot")
    return name


class ConferencesConfig(_Section):
    backend: Literal["store", "c3p"] = "store"
    database_url: Annotated[str | None, AfterValidator(_database_url)] = None
    """SQLAlchemy URL; None: SQLite file ``sipbot.db`` in the data directory."""
    demo_data: bool = True
    """At start, the demo conferences for alice and bob of ``sip.domain`` if they have none
    upcoming (bot.conferencing.store.DEMO)."""
    time_zone: Annotated[str, AfterValidator(_time_zone)] = "UTC"
    cache_seconds: float = Field(default=5.0, ge=0)
    default_duration: int = Field(60, ge=1, le=1440)
    dial_in: str = ""
    endpoints: EndpointsConfig = EndpointsConfig()
    c3p: C3pConfig = C3pConfig()

    @model_validator(mode="after")
    def _registered_needs_digest(self) -> ConferencesConfig:
        """Registered endpoints answer Digest challenges, which Lync / SfB never send."""
        if self.backend == "c3p" and self.endpoints.mode == "registered" and not self.c3p.digest:
            raise _Problem(
                "endpoints.mode registered answers Digest challenges, and a Lync / Skype for "
                "Business focus factory takes no Digest (MS-SIPAE): use mode trusted there, or "
                "set conferences.c3p.digest: true for a server that does (Kamailio, Asterisk)",
                path=("c3p", "digest"),
            )
        return self


class CommandsConfig(_Section):
    modules: tuple[Annotated[str, AfterValidator(_importable)], ...] = ()
    entry_points: bool = True


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class ReloadConfig(_Section):
    watch: bool = True
    """Follow the config file: a change (an edit, a rename over it, a Kubernetes ConfigMap
    update) is reloaded as SIGHUP would. A change of this setting waits for a restart."""


class ShutdownConfig(_Section):
    deadline: float = Field(5.0, gt=0, le=300)
    """Seconds from SIGTERM/SIGINT to exit: calls and IM sessions ended (BYE), the
    registration removed, replies in flight sent; what is left then is cut."""


class RuntimeConfig(_Section):
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    """auto: uvloop when it is installed (it is, with the bot), else asyncio's own loop;
    uvloop: that or a config error; asyncio: the standard library's loop. Read at start."""


class Config(_Section):
    sip: SipConfig = SipConfig()
    registrar: RegistrarConfig = RegistrarConfig()
    features: FeaturesConfig = FeaturesConfig()
    acl: AclConfig = AclConfig()
    im: ImConfig = ImConfig()
    conferences: ConferencesConfig = ConferencesConfig()
    media: MediaConfig = MediaConfig()
    calls: CallsConfig = CallsConfig()
    sounds: SoundsConfig = SoundsConfig()
    announcements: AnnouncementsConfig = AnnouncementsConfig()
    commands: CommandsConfig = CommandsConfig()
    security: SecurityConfig = SecurityConfig()
    admin: AdminConfig = AdminConfig()
    logging: LoggingConfig = LoggingConfig()
    reload: ReloadConfig = ReloadConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @model_validator(mode="after")
    def _rules_find_their_conferences(self) -> Config:
        """Automatic announcements look their conferences up in the SQL store
        (bot.announcements); the c3p backend keeps none there."""
        if self.conferences.backend != "c3p":
            return self
        for index, rule in enumerate(self.announcements.rules):
            uri = rule.target.lower().startswith(("sip:", "sips:"))
            if rule.enabled and not (rule.when == "cron" and uri):
                raise _Problem(
                    f"rule {rule.name!r} ({rule.when}, target {rule.target}) needs conferences "
                    "with their times, which only conferences.backend: store has; with backend "
                    "c3p a Lync / Skype for Business focus keeps no schedule, so only cron "
                    "rules aimed at a SIP URI can run (or set enabled: false)",
                    path=("announcements", "rules", index, "when"),
                )
        return self

    @model_validator(mode="after")
    def _admins_with_domain(self) -> Config:
        """``alice`` in acl.admins is alice of the bot's own domain (senders are user@domain)."""
        admins = tuple(
            name if "@" in name else f"{name}@{self.sip.domain}"
            for name in (item.removeprefix("sip:") for item in self.acl.admins)
        )
        if admins == self.acl.admins:
            return self
        return self.model_copy(update={"acl": self.acl.model_copy(update={"admins": admins})})

    @property
    def realm(self) -> str:
        return self.registrar.realm or self.sip.domain
