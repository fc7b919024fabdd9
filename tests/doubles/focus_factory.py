"""A Lync / Skype for Business focus factory (and the foci it creates) double, speaking C3P over
real SIP transactions. What it takes and answers, and where each rule comes from:

- Envelopes: MS-CONFPRO §2.2.2 (``<request>``: ``requestId``, ``from`` = the organizer, ``to`` =
  the Request-URI, ``C3PVersion``, exactly one command) and §2.2.3 (``<response>``: requestId,
  from, to, ``code``; one child named after the command). A failure's ``reason`` is on that
  child (§3.1.5.3), with the reason values of §2.2.3.4.
- getConference: the §4.5 example (``conferenceKeys msci:conference-id``); the answer's
  ``conference-info`` has ``entity=""`` and ``version``, as in §4.5. Unknown id:
  ``conferenceDoesNotExist`` (§3.2.5.5).
- getConferences (§3.1.4.4): the list one element deeper than the command, as the SfB plug-in
  ``nextlabs-sources/SfBServerEnforcer`` (CSIPParser.cs) reads real answers by position
  (``conferences``, the wrapper's name here, is a placeholder: no published name); summaries
  carry the focus URI in ``entity`` but no ``msci:conference-id`` unless ``ids_in_summaries``.
- getAvailableMcuTypes: the §4.7 example; getConferencingCapabilities: the same ``mcu-types``,
  as pidgin-sipe (``src/core/sipe-conf.c``) reads them.
- addConference: the §4.1 example and pidgin-sipe's request: ``conference-info entity=""``
  holding ``conference-description`` (RFC 4575 §5.3 elements, and ``msci:conference-id``,
  ``expiry-time``, ``admission-policy``), ``conference-state`` (RFC 4575 §5.5) and
  ``msci:conference-view`` with ``entity-view``s. Any other element, or one in the wrong
  namespace, is a schema violation: 400 with ms-diagnostics 3006 "Failed to parse the C3P
  request". An admission policy other than UCMA's three: ``invalidAdmissionPolicy``; a view of
  an MCU it does not have: ``mcuTypeNotAvailable``; id not 8-32 alphanumerics (§2.2.1.2):
  ``invalidConferenceId``. The answer's ``conference-info entity`` is the new focus URI
  (pidgin-sipe reads it there).
- deleteConference: MS-CONFBAS §2.2.3.14, sent to the focus with ``conferenceKeys
  confEntity`` = the focus URI, answered ``<conference-info entity="<focus URI>"/>``. The
  focus-factory form has no published example, so the factory does not take it (3004). A focus
  that does not exist is not found: 404; a confEntity that is not the focus asked: 3003.
- ms-diagnostics of MS-OCER §8.4: 3000 bad From, 3001 bad To, 3003 invalid conference-entity,
  3004 command not implemented, 3006 unparsable, 3012 invalid conference URI, 3014 failed
  authorization.
- An organizer sees and changes only the organizer's own conferences (MS-CONFPRO §3.2.5).

What it does not model: joining (focus INVITE, MCUs), the conference lifetime beyond expiry,
static (Meet Now) meetings, modifyConference, encryption keys and DNS. Who a request is from: by
default only requests from the addresses in ``trusted`` that carry P-Asserted-Identity are
served, as a pool serves a trusted application over mutual TLS (everyone else gets 3014); with
``passwords`` it authenticates users instead, as a standards server (Kamailio, Asterisk) does
- never Lync / SfB, which take no Digest (MS-SIPAE): Digest (RFC 3261 §22), a REGISTER
challenged with 401 and WWW-Authenticate, a SERVICE with 407 and Proxy-Authenticate, and
REGISTER kept as a registrar would (423 below ``min_expires``, a grant of at most
``max_expires`` in the Contact's expires, RFC 3261 §10.3).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from bot.sip import Request, Response, make_response
from bot.sip.digest import DigestServer
from bot.sip.grammar import is_digits
from bot.sip.headers import Address
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

CCCP = "urn:ietf:params:xml:ns:cccp"
CI = "urn:ietf:params:xml:ns:conference-info"
MSCI = "http://schemas.microsoft.com/rtc/2005/08/confinfoextensions"
Answer = tuple[str, str]
"""(the failure reason, "" for success; the command element's content)."""
POLICIES = ("closedAuthenticated", "openAuthenticated", "anonymous")
"""UCMA's admission policies, the only ones the schema has."""
# addConference: the children each element may have, by (namespace, name) (see the docstring)
SCHEMA = {
    (CI, "conference-info"): {
        (CI, "conference-description"), (CI, "conference-state"), (MSCI, "conference-view"),
    },
    (CI, "conference-description"): {
        (CI, "display-text"), (CI, "subject"), (CI, "free-text"), (CI, "keywords"),
        (CI, "conf-uris"), (CI, "service-uris"), (CI, "maximum-user-count"),
        (CI, "available-media"), (MSCI, "conference-id"), (MSCI, "expiry-time"),
        (MSCI, "admission-policy"),
    },
    (CI, "conference-state"): {(CI, "user-count"), (CI, "active"), (CI, "locked")},
    (MSCI, "conference-view"): {(MSCI, "entity-view")},
}  # fmt: skip


@dataclass
class Stored:
    conference_id: str
    subject: str
    policy: str
    expiry: str
    locked: bool
    mcus: tuple[str, ...]


@dataclass
class FocusFactory:
    trusted: set[str] = field(default_factory=lambda: {"127.0.0.1"})
    silent: bool = False
    """Answer nothing at all (a server that is down)."""
    conferences: dict[str, dict[str, Stored]] = field(default_factory=dict)
    """organizer (user@domain) -> conference id -> conference."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(organizer, command) of every request answered."""
    services: list[Request] = field(default_factory=list)
    """Every SERVICE served, as it arrived."""
    mcu_types: tuple[str, ...] = ("audio-video", "chat", "meeting", "phone-conf")
    """What getAvailableMcuTypes lists (MS-CONFPRO §4.7)."""
    ids_in_summaries: bool = False
    """Whether getConferences summaries carry msci:conference-id."""
    canned: dict[str, bytes] = field(default_factory=dict)
    """command -> the C3P body to answer it with instead (a published example)."""
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
        except (ElementTree.ParseError, DefusedXmlException):
            return _diagnostic(request, 3006, "Failed to parse the C3P request.")
        if root.get("from") != f"sip:{organizer}":
            return _diagnostic(request, 3000, "Bad From in C3P request.")
        if root.get("to") != str(request.uri):
            return _diagnostic(request, 3001, "Bad To in C3P request.")
        commands = list(root)
        if root.tag != f"{{{CCCP}}}request" or len(commands) != 1:
            return _diagnostic(request, 3006, "Failed to parse the C3P request.")
        self.services.append(request)
        command = commands[0]
        name = command.tag.rpartition("}")[2]
        target = str(request.uri)
        mine = self.conferences.setdefault(organizer, {})
        if target == f"sip:{organizer};gruu;opaque=app:conf:focusfactory":
            handler = {
                "getConferences": self._list,
                "getConference": self._show,
                "addConference": self._add,
                "getAvailableMcuTypes": self._mcu_types,
                "getConferencingCapabilities": self._mcu_types,
            }.get(name)
        elif target.startswith(f"sip:{organizer};gruu;opaque=app:conf:focus:id:"):
            if target.rpartition(":")[2] not in mine:
                return make_response(request, 404)  # no such focus
            handler = {"deleteConference": self._delete}.get(name)
        else:
            return _diagnostic(request, 3012, "Invalid conference URI.")
        if handler is None:
            return _diagnostic(request, 3004, "The requested C3P command is not implemented.")
        if name in self.canned:
            return _c3p(request, self.canned[name])
        try:
            reason, inner = handler(organizer, mine, command)
        except _Unparsable:
            return _diagnostic(request, 3006, "Failed to parse the C3P request.")
        except _BadEntity:
            return _diagnostic(
                request, 3003, "The conference-entity supplied in the C3P request is invalid."
            )
        self.requests.append((organizer, name))
        code = "failure" if reason else "success"
        said = f" reason={quoteattr(reason)}" if reason else ""
        return _c3p(request, (
            f'<?xml version="1.0" encoding="utf-8"?>\r\n<response xmlns="{CCCP}" '
            f'xmlns:msci="{MSCI}" C3PVersion="1" requestId={quoteattr(root.get("requestId", "0"))} '
            f'from={quoteattr(target)} to={quoteattr("sip:" + organizer)} code="{code}">'
            f"<{name}{said}>{inner}</{name}></response>"
        ).encode())  # fmt: skip

    # --- the commands: (failure reason or "", the command element's content) ---------------

    def _list(self, organizer: str, mine: dict[str, Stored], _: Element) -> Answer:
        summaries = "".join(
            _info(c, _focus(organizer, c), ids=self.ids_in_summaries) for c in mine.values()
        )
        return "", f"<conferences>{summaries}</conferences>"

    def _show(self, organizer: str, mine: dict[str, Stored], command: Element) -> Answer:
        keys = command.find(f"{{{CCCP}}}conferenceKeys")
        found = mine.get(keys.get(f"{{{MSCI}}}conference-id", "")) if keys is not None else None
        if found is None:
            return "conferenceDoesNotExist", ""
        return "", _info(found, "", ids=True, version=' version="2"')

    def _mcu_types(self, *_: object) -> Answer:
        types = "".join(f"<mcuType>{t}</mcuType>" for t in self.mcu_types)
        return "", f"<mcu-types>{types}</mcu-types>"

    def _delete(self, organizer: str, mine: dict[str, Stored], command: Element) -> Answer:
        keys = command.find(f"{{{CCCP}}}conferenceKeys")
        entity = keys.get("confEntity", "") if keys is not None else ""
        conference_id = entity.rpartition(":focus:id:")[2]
        if entity != _focus(organizer, mine.get(conference_id)):
            raise _BadEntity
        del mine[conference_id]
        return "", f'<conference-info xmlns="{CI}" entity={quoteattr(entity)}/>'

    def _add(self, organizer: str, mine: dict[str, Stored], command: Element) -> Answer:
        children = list(command)
        if len(children) != 1:
            raise _Unparsable
        info = children[0]
        _check_schema(info)

        def text(namespace: str, local: str) -> str:
            found = info.find(f".//{{{namespace}}}{local}")
            return (found.text or "").strip() if found is not None else ""

        conference_id = text(MSCI, "conference-id")
        policy = text(MSCI, "admission-policy") or "openAuthenticated"
        views = tuple(v.get("entity", "") for v in info.iter(f"{{{MSCI}}}entity-view"))
        if not 8 <= len(conference_id) <= 32 or not conference_id.isalnum():
            return "invalidConferenceId", ""
        if conference_id in mine:
            return "conferenceExists", ""
        if policy not in POLICIES:
            return "invalidAdmissionPolicy", ""
        if any(view not in self.mcu_types for view in views):
            return "mcuTypeNotAvailable", ""
        stored = Stored(
            conference_id=conference_id,
            subject=text(CI, "subject"),
            policy=policy,
            expiry=text(MSCI, "expiry-time"),
            locked=text(CI, "locked") == "true",
            mcus=views,
        )
        mine[conference_id] = stored
        return "", _info(stored, _focus(organizer, stored), ids=True)


class _Unparsable(ValueError):
    """What a schema-validating server answers with 3006."""


class _BadEntity(ValueError):
    """A confEntity that is not the focus asked (3003)."""


def _check_schema(info: Element) -> None:
    """``info`` is a conference-info holding only what SCHEMA allows (else _Unparsable)."""
    if info.tag != f"{{{CI}}}conference-info":
        raise _Unparsable
    for parent in info.iter():
        allowed = SCHEMA.get(_name(parent), set())
        if any(_name(child) not in allowed for child in parent):
            raise _Unparsable


def _name(element: Element) -> tuple[str, str]:
    namespace, _, local = element.tag[1:].partition("}")
    return namespace, local


def _focus(organizer: str, c: Stored | None) -> str:
    if c is None:
        return ""
    return f"sip:{organizer};gruu;opaque=app:conf:focus:id:{c.conference_id}"


def _info(c: Stored, entity: str, *, ids: bool, version: str = "") -> str:
    conference_id = f"<msci:conference-id>{c.conference_id}</msci:conference-id>" if ids else ""
    views = "".join(f'<msci:entity-view entity="{mcu}"/>' for mcu in c.mcus)
    return (
        f'<ci:conference-info xmlns:ci="{CI}" entity={quoteattr(entity)}{version}>'
        f"<ci:conference-description><ci:subject>{escape(c.subject)}</ci:subject>"
        f"{conference_id}<msci:expiry-time>{c.expiry}</msci:expiry-time>"
        f"<msci:admission-policy>{c.policy}</msci:admission-policy>"
        "<msci:is-active>false</msci:is-active></ci:conference-description>"
        f"<ci:conference-state><ci:locked>{str(c.locked).lower()}</ci:locked>"
        f"</ci:conference-state><msci:conference-view>{views}</msci:conference-view>"
        "</ci:conference-info>"
    )


def _c3p(request: Request, body: bytes) -> Response:
    response = make_response(request, 200)
    response.headers.add("Content-Type", "application/cccp+xml")
    response.body = body
    return response


def _diagnostic(request: Request, code: int, reason: str) -> Response:
    """A refusal with the ms-diagnostics code of MS-OCER §8.4."""
    response = make_response(request, 400 if code == 3006 else 403)
    response.headers.add("ms-diagnostics", f'{code};reason="{reason}";source="focusfactory"')
    return response


from tests.doubles.lync_focus import LyncFocus as LyncFocus  # noqa: E402 (issue 17: focus + A/V MCU)
