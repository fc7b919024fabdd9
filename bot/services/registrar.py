"""The embedded registrar (RFC 3261 §10.3): bindings of the users it authenticates.

The bot is the registrar of its own domain: configured users REGISTER with digest, their
bindings live in memory with expiry, and every request the bot sends to a user goes to the
user's bindings. Who a REGISTER is from is decided by bot.services.identity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import structlog

from bot.config import Config
from bot.services.identity import Identified, IdentityGate, Incoming
from bot.sip.errors import SipParseError
from bot.sip.grammar import is_digits
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


class Registrar:
    def __init__(self, config: Config, gate: IdentityGate | None = None):
        self.domain = config.sip.domain
        # a REGISTER may name the domain or this host (RFC 3261 §10.2: the Request-URI names
        # the registrar's domain; a client that knows only our address uses it)
        self.aliases = {config.sip.domain, *(item.host for item in config.sip.listen)}
        if config.sip.advertise:
            self.aliases.add(config.sip.advertise)
        self.settings = config.registrar
        self.gate = gate or IdentityGate(config)
        self._bindings: dict[str, list[Binding]] = {}
        self.answered: Counter[int] = Counter()
        """REGISTERs answered, by status (401 for a challenge): for /metrics."""
        self.bindings_changed: Counter[str] = Counter()
        """Bindings added, refreshed (registered again before expiry) and removed by the
        REGISTERs answered 200: for /metrics."""

    def reconfigure(self, config: Config) -> None:
        """New settings (a config reload); the bindings of removed users go."""
        self.settings = config.registrar
        for gone in set(self._bindings) - set(config.registrar.users):
            del self._bindings[gone]

    # --- REGISTER (RFC 3261 §10.3) -----------------------------------------------------------

    def register(self, incoming: Incoming, now: float) -> Response | None:
        """Answer a REGISTER: the response, or None when it goes out later (a challenge, or an
        answer the per-user pace holds back); counted by status for /metrics."""
        response = self._register(incoming, now)
        self.answered[401 if response is None else response.status] += 1
        return response

    def _register(self, incoming: Incoming, now: float) -> Response | None:
        request, peer = incoming.request, incoming.peer
        uri = request.uri
        if not isinstance(uri, SipUri) or uri.host.strip("[]") not in self.aliases:
            return make_response(request, 404, "Not Found (not a domain served here)")
        who = self.gate.identify(incoming, now)  # step 3
        if not isinstance(who, Identified):
            who.send(incoming)
            return None
        to = request.to.uri
        user = who.sender.user
        # steps 4-5: a user registers only their own address-of-record, in our domain
        if not isinstance(to, SipUri) or to.host != self.domain or to.user != user:
            response = make_response(request, 403, "Forbidden (you may register only yourself)")
        else:
            response = self._update(request, user, peer, now)
        who.answered(response)  # RFC 7616 §3.5: the next nonce, when this one nears expiry
        if who.hold > 0:
            incoming.respond_after(who.hold, response)
            return None
        return response

    def _update(self, request: Request, user: str, peer: Peer, now: float) -> Response:
        settings = self.settings
        raw_contacts = request.headers.values("contact")
        if len(raw_contacts) > settings.max_bindings:
            # RFC 3261 §10.3 leaves the registrar its policy; §21.4.4: retrying will not help
            return make_response(request, 403, "Forbidden (too many contacts)")
        try:
            contacts = request.contacts
        except SipParseError:
            return make_response(request, 400, "Bad Request (unreadable Contact)")
        if any(not isinstance(c.uri, SipUri) for c in contacts):
            # only sip/sips contacts can be reached; 416 (§21.4.19) names the Request-URI's
            # scheme, so a Contact the registrar will not keep is a 400 (§21.4.1)
            return make_response(request, 400, "Bad Request (only sip and sips contacts)")
        header_expires = _int(request.headers.get("expires"))
        call_id, cseq = request.call_id, request.cseq.seq
        # step 7 compares contacts by URI: keyed, so the check is linear in the contacts
        bindings = {_key(b.contact): b for b in self._bindings.get(user, []) if b.expires_at > now}
        known = set(bindings)
        if any(c.strip() == "*" for c in raw_contacts):
            # step 6: "*" removes every binding, only with Expires: 0 and no other Contact
            if len(raw_contacts) != 1 or header_expires != 0:
                return make_response(request, 400, "Bad Request (* needs Expires: 0 alone)")
            if any(b.call_id == call_id and b.cseq >= cseq for b in bindings.values()):
                return make_response(request, 500, "Server Internal Error (out of order)")
            bindings = {}
        for contact in contacts:
            expires = _int(contact.param("expires"))
            if expires is None:
                expires = header_expires
            if expires is None:
                expires = settings.default_expires
            if 0 < expires < settings.min_expires:
                response = make_response(request, 423)  # step 7: Interval Too Brief
                response.headers.add("Min-Expires", str(settings.min_expires))
                return response
            expires = min(expires, settings.max_expires)
            key = _key(contact)
            existing = bindings.pop(key, None)
            if existing is not None and existing.call_id == call_id and existing.cseq >= cseq:
                return make_response(request, 500, "Server Internal Error (out of order)")
            if expires > 0:
                bindings[key] = Binding(
                    contact=Address(uri=contact.uri),
                    expires_at=now + expires,
                    call_id=call_id,
                    cseq=cseq,
                    peer=peer,
                )
        if len(bindings) > settings.max_bindings:
            return make_response(request, 403, "Forbidden (too many bindings for this user)")
        if bindings:
            self._bindings[user] = list(bindings.values())
        else:
            self._bindings.pop(user, None)
        log.info("registrar.bindings_updated", user=user, bindings=len(bindings))
        after = set(bindings)
        self.bindings_changed["added"] += len(after - known)
        self.bindings_changed["removed"] += len(known - after)
        self.bindings_changed["refreshed"] += len(after & known & {_key(c) for c in contacts})
        response = make_response(request, 200)  # step 8: every current binding, with expires
        for binding in bindings.values():
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
    if value is None or not is_digits(value.strip()):
        return None
    return int(value.strip())


def _key(contact: Address) -> tuple[str, str | None, str, int | None]:
    # RFC 3261 §10.3 step 7 compares URIs by §19.1.4; scheme, user, host and port suffice here
    uri = contact.sip_uri
    return (uri.scheme, uri.user, uri.host.lower(), uri.port)
