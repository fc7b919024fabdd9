"""A Lync / Skype for Business focus factory double, speaking C3P over real SIP transactions.

Built from MS-CONFPRO: the request and response envelopes of §2.2.2 and §2.2.3 (root element,
``requestId``/``from``/``to``/``C3PVersion``, exactly one command child, ``code`` and
``reason``), the ``conference-info`` with ``msci`` extensions of §2.2.1.2, the getConference
example of §4.5, addConference as pidgin-sipe sends it, the ms-diagnostics codes of MS-OCER
§8.4 (3000 bad From, 3001 bad To, 3004 command not implemented, 3006 unparsable), and the rule
that an organizer sees and changes only the organizer's own conferences (§3.2.5).

What it does not model: MCUs, the conference lifetime beyond expiry, static (Meet Now)
meetings, modifyConference, encryption keys and DNS. Who a request is from: by default only
requests from the addresses in ``trusted`` that carry P-Asserted-Identity are served, as a pool
serves a trusted application (everyone else gets 3014); with ``passwords`` it authenticates
users instead, as the front end (or the deployed Kamailio) does: Digest (RFC 3261 §22), a
REGISTER challenged with 401 and WWW-Authenticate, a SERVICE with 407 and Proxy-Authenticate,
and REGISTER kept as a registrar would (423 below ``min_expires``, a grant of at most
``max_expires`` in the Contact's expires, RFC 3261 §10.3).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree

from bot.sip import Request, Response, make_response
from bot.sip.digest import DigestServer
from bot.sip.grammar import is_digits
from bot.sip.headers import Address
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

CCCP = "urn:ietf:params:xml:ns:cccp"
CI = "urn:ietf:params:xml:ns:conference-info"
MSCI = "http://schemas.microsoft.com/rtc/2005/08/confinfoextensions"
Answer = tuple[tuple[str, str], str]
"""((code, reason), the command element's content)."""


@dataclass
class Stored:
    conference_id: str
    subject: str
    policy: str
    expiry: str
    start: str | None = None
    end: str | None = None


@dataclass
class FocusFactory:
    trusted: set[str] = field(default_factory=lambda: {"127.0.0.1"})
    silent: bool = False
    """Answer nothing at all (a server that is down)."""
    conferences: dict[str, dict[str, Stored]] = field(default_factory=dict)
    """organizer (user@domain) -> conference id -> conference."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(organizer, command) of every request answered."""
    endpoint: SipEndpoint | None = None
    passwords: dict[str, str] | None = None
    """user -> password: authenticate with Digest instead of trusting addresses."""
    min_expires: int = 60
    max_expires: int = 3600
    wire: list[tuple[str, bool, int]] = field(default_factory=list)
    """(method, sent with credentials, status answered) of every request, in order."""
    registers: list[Request] = field(default_factory=list)
    """Every REGISTER that passed authentication."""
    digest: DigestServer = field(default_factory=lambda: DigestServer("contoso.com"))

    async def start(self, timers: TimerConfig) -> Peer:
        self.endpoint = SipEndpoint(
            EndpointConfig(listen=(Listen(port=0),), timers=timers), handler=self.handle
        )
        await self.endpoint.start()
        return Peer("UDP", *self.endpoint.address())

    async def close(self) -> None:
        if self.endpoint is not None:
            await self.endpoint.close()

    def handle(self, incoming: ServerRequest) -> Response | None:
        request = incoming.request
        if self.silent:
            return None
        response = self._answer(incoming)
        credentials = any(h in request.headers for h in ("authorization", "proxy-authorization"))
        self.wire.append((request.method, credentials, response.status))
        return response

    def _answer(self, incoming: ServerRequest) -> Response:
        request = incoming.request
        registrar = self.passwords is not None  # users register here too
        if request.method != "SERVICE" and not (registrar and request.method == "REGISTER"):
            return make_response(request, 405)
        if request.method == "SERVICE" and request.content_type != "application/cccp+xml":
            return make_response(request, 415)
        if registrar:
            return self._authenticated(incoming)
        asserted = request.headers.get("p-asserted-identity")
        if incoming.peer.host not in self.trusted or not asserted:
            # only a trusted application may act for a user (MS-SIPAE)
            return _diagnostic(request, 3014, "Failed authorization.")
        return self._service(request, str(Address.parse(asserted).uri).removeprefix("sip:"))

    def _authenticated(self, incoming: ServerRequest) -> Response:
        """A user's request, answered once its Digest credentials check out (RFC 3261 §22)."""
        request, source = incoming.request, incoming.peer.host
        now = asyncio.get_running_loop().time()
        proxy = request.method != "REGISTER"  # §22.3: a proxy challenges with 407
        passwords = self.passwords or {}
        verdict = self.digest.verify(request, passwords.get, now, source=source, proxy=proxy)
        sender = request.from_.uri
        user = getattr(sender, "user", None)
        if not verdict.ok or verdict.username != user:
            response = make_response(request, 407 if proxy else 401)
            header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
            for value in self.digest.challenges(now, source=source, stale=verdict.stale):
                response.headers.add(header, value)
            return response
        if request.method == "REGISTER":
            return self._register(request)
        return self._service(request, str(sender).removeprefix("sip:"))

    def _register(self, request: Request) -> Response:
        """A registrar's answer (RFC 3261 §10.3): 423 under ``min_expires``, else a grant."""
        asked = (request.headers.get("expires") or "").strip()
        expires = int(asked) if is_digits(asked) else self.max_expires
        if 0 < expires < self.min_expires:
            response = make_response(request, 423)
            response.headers.add("Min-Expires", str(self.min_expires))
            return response
        self.registers.append(request)
        response = make_response(request, 200)
        if expires:
            granted = min(expires, self.max_expires)
            response.headers.add("Contact", f"{request.headers.get('contact')};expires={granted}")
        return response

    def _service(self, request: Request, organizer: str) -> Response:
        try:
            root = ElementTree.fromstring(request.body)
        except ElementTree.ParseError:
            return _diagnostic(request, 3006, "Failed to parse the C3P request.")
        if root.get("from") != f"sip:{organizer}":
            return _diagnostic(request, 3000, "Bad From in C3P request.")
        if root.get("to") != str(request.uri):
            return _diagnostic(request, 3001, "Bad To in C3P request.")
        commands = list(root)
        if len(commands) != 1:
            return _diagnostic(request, 3006, "Failed to parse the C3P request.")
        command = commands[0]
        name = command.tag.rpartition("}")[2]
        handler = {
            "getConferences": self._list,
            "getConference": self._show,
            "addConference": self._add,
            "deleteConference": self._delete,
        }.get(name)
        if handler is None:
            return _diagnostic(request, 3004, "The requested C3P command is not implemented.")
        self.requests.append((organizer, name))
        mine = self.conferences.setdefault(organizer, {})
        code, inner = handler(organizer, mine, command)
        response = make_response(request, 200)
        response.headers.add("Content-Type", "application/cccp+xml")
        reason = f" reason={quoteattr(code[1])}" if code[0] == "failure" else ""
        response.body = (
            f'<?xml version="1.0" encoding="utf-8"?>\r\n<response xmlns="{CCCP}" '
            f'xmlns:ci="{CI}" xmlns:msci="{MSCI}" C3PVersion="1" '
            f"requestId={quoteattr(root.get('requestId', '0'))} from={quoteattr(str(request.uri))} "
            f'to={quoteattr("sip:" + organizer)} code="{code[0]}"{reason}>'
            f"<{name}>{inner}</{name}></response>"
        ).encode()
        return response

    # --- the commands: (code, reason) and the command element's content -------------------

    def _list(self, organizer: str, mine: dict[str, Stored], _: Element) -> Answer:
        return ("success", ""), "".join(_info(organizer, c) for c in mine.values())

    def _show(self, organizer: str, mine: dict[str, Stored], command: Element) -> Answer:
        found = mine.get(_key(command))
        if found is None:
            return ("failure", "conferenceDoesNotExist"), ""
        return ("success", ""), _info(organizer, found)

    def _delete(self, organizer: str, mine: dict[str, Stored], command: Element) -> Answer:
        if mine.pop(_key(command), None) is None:
            return ("failure", "conferenceDoesNotExist"), ""
        return ("success", ""), ""

    def _add(self, organizer: str, mine: dict[str, Stored], command: Element) -> Answer:
        def text(local: str) -> str | None:
            for element in command.iter():
                if element.tag.rpartition("}")[2] == local:
                    return (element.text or "").strip()
            return None

        conference_id = text("conference-id") or ""
        if not 8 <= len(conference_id) <= 32 or not conference_id.isalnum():
            return ("failure", "invalidConferenceId"), ""
        if conference_id in mine:
            return ("failure", "conferenceExists"), ""
        stored = Stored(
            conference_id=conference_id,
            subject=text("subject") or "",
            policy=text("admission-policy") or "openAuthenticated",
            expiry=text("expiry-time") or "",
            start=text("start-time"),
            end=text("end-time"),
        )
        mine[conference_id] = stored
        return ("success", ""), _info(organizer, stored)


def _key(command: Element) -> str:
    keys = command.find(f"{{{CCCP}}}conferenceKeys")
    return keys.get(f"{{{MSCI}}}conference-id", "") if keys is not None else ""


def _info(organizer: str, c: Stored) -> str:
    times = "".join(
        f"<msci:{name}>{value}</msci:{name}>"
        for name, value in (("start-time", c.start), ("end-time", c.end))
        if value
    )
    entity = f"sip:{organizer};gruu;opaque=app:conf:focus:id:{c.conference_id}"
    return (
        f"<ci:conference-info entity={quoteattr(entity)}><ci:conference-description>"
        f"<ci:subject>{escape(c.subject)}</ci:subject>"
        f"<msci:conference-id>{c.conference_id}</msci:conference-id>"
        f"<msci:expiry-time>{c.expiry}</msci:expiry-time>"
        f"<msci:admission-policy>{c.policy}</msci:admission-policy>{times}"
        "<msci:is-active>false</msci:is-active>"
        "</ci:conference-description></ci:conference-info>"
    )


def _diagnostic(request: Request, code: int, reason: str) -> Response:
    """A refusal with the ms-diagnostics code of MS-OCER §8.4."""
    response = make_response(request, 400 if code == 3006 else 403)
    response.headers.add("ms-diagnostics", f'{code};reason="{reason}";source="focusfactory"')
    return response


from tests.doubles.lync_focus import LyncFocus as LyncFocus  # noqa: E402 (issue 17: focus + A/V MCU)
