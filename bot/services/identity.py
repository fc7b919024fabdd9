"""Who a request is from, and whether to believe it: decided here, for every request path (pager
MESSAGE, INVITE, requests inside an IM session, REGISTER). Nothing else reads From or
P-Asserted-Identity to decide who someone is.

- Embedded mode (the bot is the registrar): the digest-authenticated user (RFC 3261 §22.4).
- Behind proxies (``sip.trusted_proxies``): only requests from a trusted proxy are taken, and
  the sender is the proxy's P-Asserted-Identity (RFC 3325 §9.1); a request from a proxy whose
  identity cannot be read is refused, never attributed to its From.
- No proxies and not embedded: the From (closed networks only).
- Inside a dialog: the dialog's identity, believed only on the flow it was established on (the
  same connection, or the same source address and port over UDP) or from a trusted proxy;
  from anywhere else the request is identified like a new one and must name the same user
  (knowing a Call-ID and two tags proves nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.config import Config
from bot.sender import Sender
from bot.services.guard import AuthGuard, Network, exemptions
from bot.sip.digest import DigestServer
from bot.sip.errors import SipParseError
from bot.sip.grammar import split_outside_quotes
from bot.sip.headers import Address
from bot.sip.message import Request, Response, make_response
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri

Mode = Literal["embedded", "proxies", "from"]
HOLD_RETRY = 16
"""Retry-After (seconds) of the 503 for an attempt beyond the per-user pace (bot.services.guard)."""


class Incoming(Protocol):
    """A request to answer (the endpoint's ServerRequest)."""

    @property
    def request(self) -> Request: ...

    @property
    def peer(self) -> Peer: ...

    def respond_after(self, delay: float, response: Response) -> None: ...

    def respond_stateless(self, response: Response) -> None: ...


@dataclass(frozen=True, slots=True)
class Identified:
    """The request is from ``sender``; its answer waits ``hold`` seconds (the per-user pace of
    a much-guessed user name, bot.services.guard)."""

    sender: Sender
    hold: float = 0.0
    auth_info: str | None = None
    """Authentication-Info for its 2xx (RFC 7616 §3.5): the next nonce, when the one it was
    authenticated with nears its expiry."""

    def answered(self, response: Response | None) -> Response | None:
        """``response`` with the Authentication-Info when it is a 2xx: the client's next
        request may then go pre-authorized with the next nonce (RFC 7616 §3.4, §3.5)."""
        if response is not None and self.auth_info is not None and 200 <= response.status < 300:
            response.headers.add("Authentication-Info", self.auth_info)
        return response


@dataclass(frozen=True, slots=True)
class Refused:
    """The request is not believed: ``response`` goes back instead, ``delay`` seconds later."""

    response: Response
    delay: float = 0.0

    def send(self, incoming: Incoming) -> None:
        """At once it goes statelessly: an unidentified request leaves no state behind (RFC
        3261 §26.3.2.4); a held answer keeps its transaction to absorb retransmissions."""
        if self.delay > 0:
            incoming.respond_after(self.delay, self.response)
        else:
            incoming.respond_stateless(self.response)


Outcome = Identified | Refused


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSettings:
    """Everything the gate decides with, built from a config before anything changes (a
    reload swaps it in whole)."""

    mode: Mode
    domain: str
    proxies: frozenset[str]
    """Trusted proxy addresses, as the transport names a source."""
    passwords: Mapping[str, str]
    users: Mapping[str, Identified]
    """Each user of ``passwords`` as identified when authenticated, with no hold and no
    Authentication-Info (the usual verdict, made once here, not for every request)."""
    nonce_lifetime: float
    never_ban: list[Network]

    @classmethod
    def of(cls, config: Config) -> GateSettings:
        sip = config.sip
        mode: Mode = "embedded" if sip.mode == "embedded" else "from"
        if mode == "from" and sip.trusted_proxies:
            mode = "proxies"
        return cls(
            mode=mode,
            domain=sip.domain,
            proxies=frozenset(_address(p) for p in sip.trusted_proxies),
            passwords={name: user.password for name, user in config.registrar.users.items()},
            users={name: Identified(Sender(name, sip.domain)) for name in config.registrar.users},
            nonce_lifetime=config.security.auth.nonce_lifetime,
            never_ban=exemptions(config.security.auth, sip.trusted_proxies),
        )


class IdentityGate:
    def __init__(self, config: Config, guard: AuthGuard | None = None):
        self.guard = guard or AuthGuard(config.security.auth, config.sip.trusted_proxies)
        self.admits: Callable[[str, float], bool] = self.guard.allows
        """``admits(address, now)``: False while ``address`` is banned, what it sends is
        dropped unread (the guard's own check: it runs for every datagram)."""
        self.settings = GateSettings.of(config)
        self.digest = DigestServer(
            config.realm,
            algorithms=config.registrar.digest_algorithms,
            nonce_lifetime=self.settings.nonce_lifetime,
        )

    def apply(self, settings: GateSettings, config: Config) -> None:
        """Swap in settings built by ``GateSettings.of(config)`` (a reload's last step)."""
        self.settings = settings
        self.digest.nonce_lifetime = settings.nonce_lifetime
        self.guard.reconfigure(config.security.auth, settings.never_ban)

    def changed_users(self, new: GateSettings) -> set[str]:
        """Users removed by ``new``, or whose password it changes: their sessions must end."""
        old = self.settings.passwords
        return {name for name, password in old.items() if new.passwords.get(name) != password}

    # --- the decision ----------------------------------------------------------------------

    def identify(self, incoming: Incoming, now: float) -> Outcome:
        """Who sent this out-of-dialog request (module doc), or the refusal to send."""
        settings, request, peer = self.settings, incoming.request, incoming.peer
        if settings.mode == "embedded":
            return self._authenticate(request, peer, now)
        if settings.mode == "proxies":
            if not self.from_proxy(peer):
                # users reach the bot through the proxies: anything else could claim anyone
                return Refused(make_response(request, 403, "Forbidden (send through the proxy)"))
            return self._asserted(request)
        uri = request.from_.uri
        if not isinstance(uri, SipUri) or uri.user is None:
            return Refused(make_response(request, 403, "Forbidden (sender is not a SIP user)"))
        return Identified(Sender(uri.user, uri.host))

    def in_dialog(self, incoming: Incoming, dialog: Identified, flow: Peer, now: float) -> Outcome:
        """A request inside a dialog established by ``dialog.sender`` on ``flow``: ``dialog``
        itself (made once per dialog, never again per request) when it is believed there."""
        peer = incoming.peer
        # the transport keeps one Peer per recent source: mostly the very same object
        if peer is flow or peer == flow or self.from_proxy(peer):
            return dialog
        if self.settings.mode == "proxies":
            return Refused(
                make_response(incoming.request, 403, "Forbidden (send through the proxy)")
            )
        who = self.identify(incoming, now)  # embedded: challenged like a new request
        if isinstance(who, Identified) and who.sender != dialog.sender:
            return Refused(
                make_response(incoming.request, 403, "Forbidden (not this session's user)")
            )
        return who

    def from_proxy(self, peer: Peer) -> bool:
        return _address(peer.host) in self.settings.proxies

    # --- embedded: digest (RFC 3261 §22.4) --------------------------------------------------

    def _authenticate(self, request: Request, peer: Peer, now: float) -> Outcome:
        """Both Authorization and Proxy-Authorization are read: Linphone answers a registrar's
        challenge pre-emptively in Proxy-Authorization. A request pre-authorized with the
        nonce of an earlier one and a higher nonce count passes without a challenge round
        (RFC 7616 §3.4; bot.sip.digest_server); an expired nonce gets ``stale=true``. The
        challenge is a 401 from a UAS (§22.3). Unknown users and wrong passwords get the very
        same fresh challenge (no user enumeration). Only a wrong answer to a nonce issued to
        this source is a failure (bot.services.guard); verdicts on a much-guessed user name
        are paced."""
        source = peer.host
        passwords = self.settings.passwords
        wrong: str | None = None
        guessed = False
        for proxy in (False, True):
            verdict = self.digest.verify(request, passwords.get, now, source=source, proxy=proxy)
            if verdict.ok and verdict.username is not None:
                user = verdict.username
                hold = self.guard.pace(user, source, True, now)
                if hold is None:
                    return Refused(self._busy(request))
                self.guard.succeeded(user, source, now)
                known = self.settings.users[user]  # verified with its password: one of them
                if hold or verdict.authentication_info is not None:
                    return Identified(known.sender, hold, verdict.authentication_info)
                return known
            if verdict.stale:  # a right answer to an old nonce: a verdict too, so paced
                hold = self.guard.pace(verdict.username, source, True, now)
                if hold is None:
                    return Refused(self._busy(request))
                return Refused(self.challenge(request, source, now, stale=True), hold)
            if verdict.wrong_answer and not guessed:
                guessed, wrong = True, verdict.username
        if not guessed:
            return Refused(self.challenge(request, source, now))
        hold = self.guard.pace(wrong, source, False, now)
        self.guard.failed(source, wrong, "wrong credentials", now)
        if hold is None:
            return Refused(self._busy(request))
        return Refused(self.challenge(request, source, now), hold)

    def challenge(
        self, request: Request, source: str, now: float, *, stale: bool = False
    ) -> Response:
        response = make_response(request, 401)
        for value in self.digest.challenges(now, source=source, stale=stale):
            response.headers.add("WWW-Authenticate", value)
        return response

    @staticmethod
    def _busy(request: Request) -> Response:
        """RFC 3261 §21.5.4 with Retry-After (§20.33): no verdict for this attempt."""
        response = make_response(request, 503, "Service Unavailable (too many attempts)")
        response.headers.add("Retry-After", str(HOLD_RETRY))
        return response

    # --- behind proxies: P-Asserted-Identity (RFC 3325) -------------------------------------

    def _asserted(self, request: Request) -> Outcome:
        uri = asserted_identity(request.headers.rows("p-asserted-identity"))
        if uri is None:
            return Refused(
                make_response(request, 403, "Forbidden (no readable P-Asserted-Identity)")
            )
        assert uri.user is not None
        return Identified(Sender(uri.user, uri.host))


def asserted_identity(rows: list[str]) -> SipUri | None:
    """The sip/sips identity a proxy asserts, or None when there is none or it cannot be read.

    RFC 3325 §9.1: ``PAssertedID-value *(COMMA PAssertedID-value)``, each a name-addr or
    addr-spec; at most one sip/sips and one tel value. Commas inside a quoted display name
    (``"Doe, John" <sip:john@...>``) do not separate values (RFC 3261 §7.3.1)."""
    sip: list[SipUri] = []
    tel = 0
    try:
        uris = [
            Address.parse(part.strip()).uri
            for row in rows
            for part in split_outside_quotes(row, ",")
        ]
    except SipParseError:
        return None
    for uri in uris:
        if isinstance(uri, SipUri):
            sip.append(uri)
        elif str(uri).lower().startswith("tel:"):
            tel += 1
        else:
            return None
    if len(sip) != 1 or tel > 1 or sip[0].user is None:
        return None
    return sip[0]


def _address(host: str) -> str:
    text = host.strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text
