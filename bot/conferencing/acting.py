"""How a user endpoint acts for its user on the SIP network (issue: trusted, registered,
embedded).

- trusted: requests carry the user in From and P-Asserted-Identity; the server believes them
  because they come from the bot's address (deploy/kamailio trusts it with ``permissions``).
- registered: the endpoint REGISTERs as the user (RFC 3261 §10.2) with the user's credentials
  from config or a secrets file, and answers digest challenges as the user.
- embedded: the bot's own store answers; nothing goes on the network.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import structlog
import yaml

from bot.conferencing.endpoints import UserEndpoint
from bot.conferencing.services import ConferenceError
from bot.config import Config, ConfigError
from bot.services.register_client import RegisterClient
from bot.sip.digest import DigestClient
from bot.sip.transaction import Peer
from bot.transport.endpoint import SipEndpoint

log = structlog.get_logger("bot.endpoints")
UNREGISTER_WAIT = 5.0
"""Seconds the user endpoints' un-registrations may take at shutdown."""


def mode_of(config: Config) -> str:
    mode = config.conferences.endpoints.mode
    if mode != "auto":
        return mode
    if config.conferences.backend == "store":
        return "embedded"
    return "trusted"


def load_credentials(config: Config) -> dict[str, str]:
    """user -> password, from ``conferences.endpoints.credentials`` and the secrets file
    (YAML, the same mapping) named by ``credentials_file``."""
    settings = config.conferences.endpoints
    passwords = dict(settings.credentials)
    path = settings.credentials_file
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                [f"conferences.endpoints.credentials_file: cannot read {path}: {exc}"]
            ) from exc
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise ConfigError(
                [f"conferences.endpoints.credentials_file: {path} must map user names to passwords"]
            )
        passwords.update(loaded)
    return passwords


class Registering:
    """Establishes an endpoint by registering as its user, with one REGISTER client per user
    (bot.services.register_client) kept while the bot runs: every refresh reuses its Call-ID
    with a rising CSeq, and its DigestClient - the user's only one - answers the C3P requests'
    challenges too, so they are pre-authorized after the first (RFC 3261 §22.3). The endpoint
    is good until the granted registration is 80 % through; the pool then establishes it
    again, which refreshes the binding. :meth:`close` un-registers (RFC 3261 §10.2.2)."""

    def __init__(self, sip: SipEndpoint, registrar: Peer, passwords: dict[str, str], expires: int):
        self.sip = sip
        self.registrar = registrar
        self.passwords = passwords
        self.expires = expires
        self._bindings: dict[str, RegisterClient] = {}
        """organizer (user@domain) -> its binding; only users with a password get one."""

    def binding(self, organizer: str) -> RegisterClient | None:
        """``organizer``'s REGISTER client, made on first use; None without a password."""
        found = self._bindings.get(organizer)
        if found is None:
            user, _, domain = organizer.partition("@")
            password = self.passwords.get(user)
            if password is None:
                return None
            found = RegisterClient(
                self.sip,
                user=user,
                domain=domain,
                credentials=DigestClient(user, password),
                expires=self.expires,
                destination=self.registrar,
            )
            self._bindings[organizer] = found
        return found

    def credentials(self, organizer: str) -> DigestClient | None:
        binding = self.binding(organizer)
        return binding.credentials if binding is not None else None

    async def __call__(self, endpoint: UserEndpoint) -> None:
        binding = self.binding(endpoint.user.address)
        if binding is None:
            raise ConferenceError(
                f"I have no credentials to act for {endpoint.user.address}; ask the "
                "administrator to add them (conferences.endpoints.credentials)."
            )
        response = await binding.register()
        if binding.granted is None:
            raise ConferenceError(
                f"I could not sign in as {endpoint.user.address} ({response.status} "
                f"{response.reason})."
            )
        endpoint.valid_until = time.monotonic() + 0.8 * binding.granted

    async def close(self) -> None:
        """Remove every binding still registered (RFC 3261 §10.2.2), within UNREGISTER_WAIT
        seconds all together, so that a shutdown is not held up by a silent registrar."""
        registered = [b for b in self._bindings.values() if b.granted is not None]
        if not registered:
            return
        try:
            async with asyncio.timeout(UNREGISTER_WAIT):
                await asyncio.gather(*(binding.unregister() for binding in registered))
        except TimeoutError:
            log.warning("endpoint.unregister_timed_out", users=len(registered))
