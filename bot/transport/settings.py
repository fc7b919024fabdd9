"""What an endpoint listens on and how it behaves (bot.transport.endpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.sip.transaction import TimerConfig
from bot.sip.uri import SipUri
from bot.sip.validation import UasPolicy
from bot.transport.limits import StreamLimits
from bot.transport.tls import TlsConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class Listen:
    transport: str = "UDP"
    """UDP, TCP or TLS."""
    host: str = "127.0.0.1"
    port: int = 5060
    """0 picks a free port."""
    advertise: str | None = None
    """Host written in Via and Contact when ``host`` is a wildcard address."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    listen: tuple[Listen, ...] = (Listen(),)
    timers: TimerConfig = field(default_factory=TimerConfig)
    policy: UasPolicy = field(default_factory=UasPolicy)
    tls: TlsConfig = field(default_factory=TlsConfig)
    outbound_proxy: SipUri | None = None
    """Every request we originate goes here first (RFC 3261 §8.1.2)."""
    keepalive_interval: float = 30.0
    """Seconds between CRLF pings on TCP/TLS connections we open (RFC 5626 §3.5.1); 0 = off."""
    limits: StreamLimits = field(default_factory=StreamLimits)
    """Caps and timeouts for TCP/TLS connections others open to us."""
    user_agent: str = "sipbot"
