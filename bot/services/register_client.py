"""The one REGISTER client (RFC 3261 §10.2): a binding of one address-of-record to our contact,
kept at a registrar. Used for the bot's own registration (bot.services.registration), by
``registered`` user endpoints (bot.conferencing.acting) and by ``sipbot send`` (bot.send)."""

from __future__ import annotations

import contextlib

import structlog

from bot.sip.digest import DigestClient
from bot.sip.errors import SipParseError
from bot.sip.grammar import is_digits
from bot.sip.message import Request, Response, new_call_id, new_request
from bot.sip.transaction import Peer
from bot.sip.uri import SipUri
from bot.transport.endpoint import SipEndpoint

log = structlog.get_logger("bot.registration")


class RegisterClient:
    """Registers ``user@domain`` at ``domain``'s registrar: every REGISTER of the binding shares
    one Call-ID and raises the CSeq (§10.2.4, so the registrar orders them); a 423 is answered
    with the Min-Expires asked for (§10.2.8); the lifetime granted is read from the 2xx
    (§10.2.4); challenges are answered with ``credentials``, the user's one DigestClient,
    which then pre-authorizes the user's later requests too (§22.3)."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        user: str,
        domain: str,
        credentials: DigestClient,
        expires: int,
        destination: Peer | None = None,
        transport: str = "UDP",
    ):
        self.endpoint = endpoint
        self.user = user
        self.domain = domain
        self.credentials = credentials
        self.expires = expires
        """Seconds asked for; raised by a 423's Min-Expires."""
        self.granted: int | None = None
        """Seconds the registrar granted last (None: not registered)."""
        self.destination = destination
        """Where to send; None: the registrar's domain, located with RFC 3263 (or the
        endpoint's outbound proxy)."""
        self.transport = transport
        """The transport our Contact names (RFC 3261 §19.1.1: its ``transport`` parameter)."""
        self.call_id = new_call_id(domain)
        self._cseq = 0

    async def register(self) -> Response:
        """REGISTER (or refresh) the binding; the final response. On a 2xx, ``granted`` says
        for how long."""
        while True:
            response = await self._send(self.expires)
            if response.status == 423 and self._raise_expires(response):
                continue
            self.granted = self._granted(response) if 200 <= response.status < 300 else None
            return response

    async def unregister(self) -> Response:
        """Remove the binding: the same REGISTER with Expires: 0 (RFC 3261 §10.2.2)."""
        self.granted = None
        return await self._send(0)

    async def _send(self, expires: int) -> Response:
        response = await self.endpoint.request(
            self._request(expires), destination=self.destination, credentials=self.credentials
        )
        # a digest retry went out with CSeq + 1 (RFC 3261 §8.1.3.5): the next REGISTER of the
        # binding must count on from there, or the registrar sees its CSeq twice (§10.3 step 7)
        with contextlib.suppress(SipParseError):
            self._cseq = max(self._cseq, response.cseq.seq)
        return response

    def _request(self, expires: int) -> Request:
        self._cseq += 1
        aor = f"<sip:{self.user}@{self.domain}>"
        return new_request(
            "REGISTER",
            SipUri(host=self.domain),  # §10.2: the Request-URI names the registrar's domain
            from_=aor,
            to=aor,
            call_id=self.call_id,
            cseq=self._cseq,
            contact=self.endpoint.contact(self.user, self.transport),
            headers=[("Expires", str(expires))],
        )

    def _raise_expires(self, response: Response) -> bool:
        """§10.2.8: ask again with at least Min-Expires; False when it says nothing usable."""
        minimum = (response.headers.get("min-expires") or "").strip()
        if is_digits(minimum) and int(minimum) > self.expires:
            log.info("registration.interval_raised", user=self.user, expires=int(minimum))
            self.expires = int(minimum)
            return True
        return False

    def _granted(self, response: Response) -> int:
        """The lifetime the registrar granted our contact (RFC 3261 §10.2.4), read leniently:
        an unreadable Contact or Expires leaves the one we asked for."""
        mine = self.endpoint.contact(self.user, self.transport).uri
        try:
            contacts = response.contacts
        except SipParseError:
            contacts = []
        for contact in contacts:
            value = contact.param("expires")
            if contact.uri == mine and value and is_digits(value):
                return int(value)
        header = (response.headers.get("expires") or "").strip()
        return int(header) if is_digits(header) else self.expires
