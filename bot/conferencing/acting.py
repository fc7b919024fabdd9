"""How a user endpoint acts for its user on the SIP network (issue: trusted, registered,
embedded).

- trusted: requests carry the user in From and P-Asserted-Identity; the server believes them
  because they come from the bot's address (deploy/kamailio trusts it with ``permissions``).
- registered: the endpoint REGISTERs as the user (RFC 3261 §10.2) with the user's credentials
  from config or a secrets file, and answers digest challenges as the user.
- embedded: the bot's own store answers; nothing goes on the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bot.conferencing.endpoints import UserEndpoint
from bot.conferencing.services import ConferenceError
from bot.config import Config, ConfigError
from bot.sip.digest import DigestClient
from bot.sip.message import new_request
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri
from bot.transport.endpoint import SipEndpoint

Credentials = Callable[[str], DigestClient | None]
"""organizer (user@domain) -> the digest client that answers challenges as that user."""


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
    """Establishes an endpoint by registering as its user; the endpoint is good until the
    registration is 80 % through, then the pool establishes it again."""

    def __init__(self, sip: SipEndpoint, registrar: Peer, passwords: dict[str, str], expires: int):
        self.sip = sip
        self.registrar = registrar
        self.passwords = passwords
        self.expires = expires

    def credentials(self, organizer: str) -> DigestClient | None:
        user = organizer.partition("@")[0]
        password = self.passwords.get(user)
        return DigestClient(user, password) if password is not None else None

    async def __call__(self, endpoint: UserEndpoint) -> None:
        user, domain = endpoint.user.user, endpoint.user.domain
        credentials = self.credentials(endpoint.user.address)
        if credentials is None:
            raise ConferenceError(
                f"I have no credentials to act for {endpoint.user.address}; ask the "
                "administrator to add them (conferences.endpoints.credentials)."
            )
        aor = f"<sip:{user}@{domain}>"
        register = new_request(
            "REGISTER",
            SipUri(host=domain),
            from_=aor,
            to=aor,
            contact=self.sip.contact(user),
            headers=[("Expires", str(self.expires))],
        )
        response = await self.sip.request(
            register, destination=self.registrar, credentials=credentials
        )
        if response.status != 200:
            raise ConferenceError(
                f"I could not sign in as {endpoint.user.address} ({response.status} "
                f"{response.reason})."
            )
        endpoint.valid_until = time.monotonic() + 0.8 * self.expires
