"""The embedded registrar (RFC 3261 §10.3) and the digest authentication of users.

The bot is the registrar of its own domain: configured users REGISTER with digest, their
bindings live in memory with expiry, and every request the bot sends to a user goes to the
user's bindings. Requests from users to the bot are challenged too, so the sender is real.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import structlog

from bot.config import Config
from bot.services.guard import AuthGuard
from bot.sip.digest import DigestServer
from bot.sip.headers import Address
from bot.sip.message import Request, Response, make_response
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri

log = structlog.get_logger("bot.registrar")


@dataclass(slots=True, kw_only=True)
class Binding:
    contact: Address
    expires_at: float
    call_id: str
    cseq: int
    peer: Peer
    """The flow the REGISTER arrived on: over TCP/TLS, requests to the user reuse it."""

    @property
    def uri(self) -> SipUri:
        return self.contact.sip_uri


class Incoming(Protocol):
    """A request to answer (the endpoint's ServerRequest)."""

    @property
    def request(self) -> Request: ...

    @property
    def peer(self) -> Peer: ...

    def respond_after(self, delay: float, response: Response) -> None: ...

    def respond_stateless(self, response: Response) -> None: ...


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The outcome of authenticating a request: the user, or the response to send instead
    (after ``delay`` seconds: failures for a much-guessed user name are slowed down)."""

    user: str | None
    response: Response | None = None
    delay: float = 0.0

    def refuse(self, incoming: Incoming) -> None:
        """Send the challenge. At once it goes statelessly: an unauthenticated request leaves
        no state behind (RFC 3261 §26.3.2.4), whatever rate they come at."""
        assert self.response is not None
        if self.delay > 0:
            incoming.respond_after(self.delay, self.response)
        else:
            incoming.respond_stateless(self.response)


NO_CREDENTIALS = "no credentials for this realm"


class Registrar:
    def __init__(self, config: Config, guard: AuthGuard | None = None):
        self.domain = config.sip.domain
        # a REGISTER may name the domain or this host (RFC 3261 §10.2: the Request-URI names
        # the registrar's domain; a client that knows only our address uses it)
        self.aliases = {config.sip.domain, *(item.host for item in config.sip.listen)}
        if config.sip.advertise:
            self.aliases.add(config.sip.advertise)
        self.settings = config.registrar
        self._passwords = {name: user.password for name, user in config.registrar.users.items()}
        self.digest = DigestServer(
            config.realm,
            algorithms=config.registrar.digest_algorithms,
            nonce_lifetime=config.security.auth.nonce_lifetime,
        )
        self.guard = guard or AuthGuard(config.security.auth, config.sip.trusted_proxies)
        self._bindings: dict[str, list[Binding]] = {}
        self.answered: Counter[int] = Counter()
        """REGISTERs answered, by status (401 for a challenge): for /metrics."""

    def reconfigure(self, config: Config) -> None:
        """New users and passwords, new nonce lifetime (a config reload); bindings stay."""
        self._passwords = {name: user.password for name, user in config.registrar.users.items()}
        self.digest.nonce_lifetime = config.security.auth.nonce_lifetime
        for gone in set(self._bindings) - set(self._passwords):
            del self._bindings[gone]

    def password_of(self, user: str) -> str | None:
        return self._passwords.get(user)

    # --- authentication ----------------------------------------------------------------------

    def authenticate(self, request: Request, peer: Peer, now: float) -> Authenticated:
        """Check digest credentials (RFC 3261 §22.4). Both Authorization and
        Proxy-Authorization are read: Linphone answers a registrar's challenge pre-emptively in
        Proxy-Authorization. The challenge is a 401 from a UAS (§22.3).

        Unknown users and wrong passwords get the very same fresh challenge (no user
        enumeration); failed attempts go to the guard, which may ban the address or slow the
        answers for a much-tried user name."""
        failure: tuple[str | None, str] | None = None
        for proxy in (False, True):
            verdict = self.digest.verify(request, self.password_of, now, proxy=proxy)
            if verdict.ok and verdict.username is not None:
                return Authenticated(verdict.username)
            if verdict.stale:
                return Authenticated(None, self.challenge(request, now, stale=True))
            if verdict.reason != NO_CREDENTIALS and failure is None:
                failure = (verdict.username, verdict.reason)
        delay = 0.0
        if failure is not None:
            delay = self.guard.failed(peer.host, failure[0], failure[1], now)
        return Authenticated(None, self.challenge(request, now), delay)

    def challenge(self, request: Request, now: float, *, stale: bool = False) -> Response:
        response = make_response(request, 401)
        for value in self.digest.challenges(now, stale=stale):
            response.headers.add("WWW-Authenticate", value)
        return response

    # --- REGISTER (RFC 3261 §10.3) -----------------------------------------------------------

    def register(self, incoming: Incoming, now: float) -> Response | None:
        response = self._register(incoming, now)
        self.answered[401 if response is None else response.status] += 1
        return response

    def _register(self, incoming: Incoming, now: float) -> Response | None:
        request, peer = incoming.request, incoming.peer
        uri = request.uri
        if not isinstance(uri, SipUri) or uri.host.strip("[]") not in self.aliases:
            return make_response(request, 404, "Not Found (not a domain served here)")
        auth = self.authenticate(request, peer, now)  # step 3
        if auth.response is not None:
            auth.refuse(incoming)
            return None
        to = request.to.uri
        user = auth.user
        # steps 4-5: a user registers only their own address-of-record, in our domain
        if not isinstance(to, SipUri) or to.host != self.domain or to.user != user:
            return make_response(request, 403, "Forbidden (you may register only yourself)")
        assert user is not None
        return self._update(request, user, peer, now)

    def _update(self, request: Request, user: str, peer: Peer, now: float) -> Response:
        bindings = [b for b in self._bindings.get(user, []) if b.expires_at > now]
        raw_contacts = request.headers.values("contact")
        header_expires = _int(request.headers.get("expires"))
        call_id, cseq = request.call_id, request.cseq.seq
        if any(c.strip() == "*" for c in raw_contacts):
            # step 6: "*" removes every binding, only with Expires: 0 and no other Contact
            if len(raw_contacts) != 1 or header_expires != 0:
                return make_response(request, 400, "Bad Request (* needs Expires: 0 alone)")
            if any(b.call_id == call_id and b.cseq >= cseq for b in bindings):
                return make_response(request, 500, "Server Internal Error (out of order)")
            bindings = []
        for contact in request.contacts:
            expires = _int(contact.param("expires"))
            if expires is None:
                expires = header_expires
            if expires is None:
                expires = self.settings.default_expires
            if 0 < expires < self.settings.min_expires:
                response = make_response(request, 423)  # step 7: Interval Too Brief
                response.headers.add("Min-Expires", str(self.settings.min_expires))
                return response
            expires = min(expires, self.settings.max_expires)
            same = [b for b in bindings if _same_contact(b.contact, contact)]
            for existing in same:
                if existing.call_id == call_id and existing.cseq >= cseq:
                    return make_response(request, 500, "Server Internal Error (out of order)")
                bindings.remove(existing)
            if expires > 0:
                bindings.append(
                    Binding(
                        contact=Address(uri=contact.uri),
                        expires_at=now + expires,
                        call_id=call_id,
                        cseq=cseq,
                        peer=peer,
                    )
                )
        if bindings:
            self._bindings[user] = bindings
        else:
            self._bindings.pop(user, None)
        log.info("registrar.bindings_updated", user=user, bindings=len(bindings))
        response = make_response(request, 200)  # step 8: every current binding, with expires
        for binding in bindings:
            remaining = max(0, int(binding.expires_at - now))
            response.headers.add("Contact", f"<{binding.uri}>;expires={remaining}")
        return response

    # --- location ----------------------------------------------------------------------------

    def lookup(self, user: str, now: float) -> list[Binding]:
        """The user's live bindings, newest first."""
        live = [b for b in self._bindings.get(user, []) if b.expires_at > now]
        return sorted(live, key=lambda b: b.expires_at, reverse=True)

    @property
    def registered_users(self) -> int:
        return len(self._bindings)


def _int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def _same_contact(a: Address, b: Address) -> bool:
    # RFC 3261 §10.3 step 7 compares URIs by §19.1.4; scheme, user, host and port suffice here
    ua, ub = a.uri, b.uri
    if isinstance(ua, SipUri) and isinstance(ub, SipUri):
        return (ua.scheme, ua.user, ua.host, ua.port) == (ub.scheme, ub.user, ub.host, ub.port)
    return str(ua) == str(ub)
