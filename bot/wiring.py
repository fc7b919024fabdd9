"""Where conferences live and how each user's endpoint acts for its user: the pool of user
endpoints the runtime builds from ``conferences`` (bot.conferencing.acting)."""

from __future__ import annotations

from bot.conferencing.acting import Registering, load_credentials, mode_of
from bot.conferencing.c3p import C3pBackend
from bot.conferencing.endpoints import UserEndpointPool
from bot.conferencing.store import ConferenceStore
from bot.config import Config, ConfigError
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri, parse_uri
from bot.transport.endpoint import SipEndpoint


def conference_pool(
    config: Config, endpoint: SipEndpoint, store: ConferenceStore
) -> tuple[UserEndpointPool, Registering | None]:
    """The SQL store, or a focus factory over C3P; with the user endpoints' registrations
    when they register (conferences.endpoints.mode: registered)."""
    settings = config.conferences
    mode = mode_of(config)
    sizes = settings.endpoints
    if settings.backend == "store":
        if mode != "embedded":
            raise ConfigError([f"conferences.endpoints.mode: {mode} needs backend c3p"])
        return UserEndpointPool(store, size=sizes.size, idle=sizes.idle_seconds), None
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
        backend = C3pBackend(endpoint, peer, timeout=settings.c3p.timeout, schedules=store)
        return UserEndpointPool(backend, size=sizes.size, idle=sizes.idle_seconds), None
    registering = Registering(endpoint, peer, load_credentials(config), sizes.register_expires)
    backend = C3pBackend(
        endpoint,
        peer,
        timeout=settings.c3p.timeout,
        credentials=registering.credentials,
        schedules=store,
    )
    users = UserEndpointPool(
        backend, establish=registering, size=sizes.size, idle=sizes.idle_seconds
    )
    return users, registering
