"""C3P (CCCP) conference provisioning with a Lync / Skype for Business focus factory
(MS-CONFPRO): the ``c3p`` conference backend.

Each request is a SIP SERVICE, out of dialog, to ``sip:<organizer>;gruu;opaque=app:conf:
focusfactory`` with ``Content-Type: application/cccp+xml`` (MS-CONFPRO §2.2.2): a ``<request>``
in urn:ietf:params:xml:ns:cccp with ``C3PVersion="1"``, a ``requestId`` unique per sender,
``from`` = the organizer, ``to`` = the To URI, and exactly one command child. The answer is a
``<response code="success|failure" reason=…>`` holding one child named after the command
(§2.2.3); conferences come as ``conference-info`` elements (RFC 4575, with the ``msci``
extensions of §2.2.1.2). XML from the network is parsed with defusedxml, tolerating elements
and namespaces it does not know.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

import structlog
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from bot.conferencing.models import Conference, soonest_first
from bot.conferencing.services import EXPIRY_AFTER_END, ConferenceError, NewConference
from bot.sip.digest import DigestClient
from bot.sip.message import Response, make_response, new_request
from bot.sip.transaction import Peer
from bot.sip.uri import parse_uri
from bot.transport.endpoint import SipEndpoint

log = structlog.get_logger("bot.c3p")
CCCP = "urn:ietf:params:xml:ns:cccp"
CONFERENCE_INFO = "urn:ietf:params:xml:ns:conference-info"
MSCI = "http://schemas.microsoft.com/rtc/2005/08/confinfoextensions"
CONTENT_TYPE = "application/cccp+xml"
NEVER = datetime.max.replace(tzinfo=UTC)
# msci:admission-policy <-> the access levels the bot shows (UCMA ConferenceAccessLevel)
ADMISSION = {
    "anonymous": "everyone",
    "openAuthenticated": "same-enterprise",
    "closedAuthenticated": "invited",
    "locked": "locked",
}
POLICY = {level: policy for policy, level in ADMISSION.items()}
# MS-CONFPRO §2.2.3.4 failure reasons, in words a person understands
REASONS = {
    "conferenceDoesNotExist": "That conference does not exist (any more).",
    "conferenceExists": "A conference with that id exists already.",
    "invalidConferenceId": "The conference server refused the conference id.",
    "invalidExpiryTime": "The conference server refused the end time.",
    "invalidAdmissionPolicy": "The conference server refused the access level.",
    "maximumConferencesExceeded": "You have as many conferences as the server allows; "
    "cancel one first.",
    "unauthorized": "The conference server says you may not do that.",
    "forbidden": "The conference server says you may not do that.",
    "requestMalformed": "The conference server did not understand the request.",
    "serverBusy": "The conference server is busy; try again in a minute.",
    "timeout": "The conference server timed out; try again in a minute.",
    "notSupported": "The conference server does not support that.",
}


@dataclass(frozen=True, slots=True)
class C3pResponse:
    code: str
    reason: str | None
    command: Element | None
    """The child named after the command (``<getConferences>`` …), when there is one."""


class C3pError(ValueError):
    """A body that is not a C3P response."""


_request_ids = itertools.count(1)


def build_request(organizer: str, command: str) -> tuple[str, bytes]:
    """The focus-factory URI and the ``<request>`` body carrying ``command`` (XML)."""
    factory = f"sip:{organizer};gruu;opaque=app:conf:focusfactory"
    body = (
        f'<?xml version="1.0" encoding="utf-8"?>\r\n'
        f'<request xmlns="{CCCP}" xmlns:msci="{MSCI}" C3PVersion="1" '
        f'requestId="{next(_request_ids)}" from={quoteattr("sip:" + organizer)} '
        f"to={quoteattr(factory)}>{command}</request>"
    )
    return factory, body.encode()


def get_conferences() -> str:
    return "<getConferences/>"


def get_conference(conference_id: str) -> str:
    return f"<getConference>{_keys(conference_id)}</getConference>"


def delete_conference(conference_id: str) -> str:
    return f"<deleteConference>{_keys(conference_id)}</deleteConference>"


def _keys(conference_id: str) -> str:
    return f"<conferenceKeys msci:conference-id={quoteattr(conference_id)}/>"


def add_conference(conference_id: str, new: NewConference) -> str:
    """As real Lync clients send it (MS-CONFPRO §3.1.4.1; pidgin-sipe), with the subject."""
    expiry = new.start + new.duration + EXPIRY_AFTER_END
    return (
        f'<addConference><ci:conference-info xmlns:ci="{CONFERENCE_INFO}" entity="">'
        f"<ci:conference-description><ci:subject>{escape(new.subject)}</ci:subject>"
        f"<msci:conference-id>{conference_id}</msci:conference-id>"
        f"<msci:expiry-time>{_stamp(expiry)}</msci:expiry-time>"
        f"<msci:admission-policy>{POLICY.get(new.access_level, 'openAuthenticated')}"
        "</msci:admission-policy>"
        f"<msci:start-time>{_stamp(new.start)}</msci:start-time>"
        f"<msci:end-time>{_stamp(new.start + new.duration)}</msci:end-time>"
        "</ci:conference-description></ci:conference-info></addConference>"
    )


def parse_response(body: bytes) -> C3pResponse:
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise C3pError(f"not XML: {exc}") from exc
    if root.tag != f"{{{CCCP}}}response":
        raise C3pError(f"not a C3P response: {root.tag}")
    code = root.get("code", "")
    if code not in ("success", "failure"):
        raise C3pError(f"response code {code!r}")
    command = next(iter(root), None)
    return C3pResponse(code, root.get("reason"), command)


def conferences_in(element: Element, organizer: str) -> list[Conference]:
    """Every conference-info below ``element``, wherever the server put it (no wrapper
    element assumed); entries without an entity or id are skipped."""
    found = []
    for info in element.iter(f"{{{CONFERENCE_INFO}}}conference-info"):
        conference = _conference(info, organizer)
        if conference is not None:
            found.append(conference)
    return found


def _conference(info: Element, organizer: str) -> Conference | None:
    entity = info.get("entity")
    conference_id = _find(info, "conference-id")
    if not entity or not conference_id:
        return None
    expiry = _time(_find(info, "expiry-time"))
    start, end = _time(_find(info, "start-time")), _time(_find(info, "end-time"))
    return Conference(
        conference_id=conference_id,
        organizer=organizer,
        subject=_find(info, "subject") or "(no subject)",
        uri=entity,
        access_level=ADMISSION.get(_find(info, "admission-policy") or "", "same-enterprise"),
        start=start,
        end=end,
        expiry=expiry or NEVER,
    )


def _find(info: Element, local: str) -> str | None:
    """The text of the first descendant named ``local`` in any name space."""
    for element in info.iter():
        if element.tag.rpartition("}")[2] == local and element.text:
            return element.text.strip()
    return None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class C3pBackend:
    """Conference services from a focus factory, asked as the organizer, to ``server``.
    Trusted (no ``credentials``): the SERVICE carries the organizer in From and
    P-Asserted-Identity, which the server believes because it trusts the bot's address (a
    trusted application, MS-SIPAE). Registered: it answers the server's challenges with the
    organizer's own credentials instead."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        server: Peer,
        *,
        timeout: float = 5.0,
        credentials: Callable[[str], DigestClient | None] | None = None,
    ):
        self.endpoint = endpoint
        self.server = server
        self.timeout = timeout
        self.credentials = credentials

    async def summaries(self, organizer: str, now: datetime) -> list[Conference]:
        command = await self._ask(organizer, get_conferences(), "list your conferences")
        listed = conferences_in(command, organizer)
        return sorted((c for c in listed if c.expiry > now), key=soonest_first)

    async def details(self, organizer: str, conference_id: str) -> Conference | None:
        try:
            command = await self._ask(organizer, get_conference(conference_id), "find it")
        except _Failure as failure:
            if failure.reason == "conferenceDoesNotExist":
                return None
            raise
        found = conferences_in(command, organizer)
        return found[0] if found else None

    async def schedule(self, organizer: str, new: NewConference) -> Conference:
        conference_id = secrets.token_hex(16).upper()  # MS-CONFPRO: 8-32 alphanumerics
        command = await self._ask(organizer, add_conference(conference_id, new), "schedule it")
        found = conferences_in(command, organizer)
        if found:
            return found[0]
        entity = next(
            (e.get("entity") for e in command.iter(f"{{{CONFERENCE_INFO}}}conference-info")),
            None,
        )
        end = new.start + new.duration
        return Conference(
            conference_id=conference_id,
            organizer=organizer,
            subject=new.subject,
            uri=entity or f"sip:{organizer};gruu;opaque=app:conf:focus:id:{conference_id}",
            access_level=new.access_level,
            start=new.start,
            end=end,
            expiry=end + EXPIRY_AFTER_END,
        )

    async def cancel(self, organizer: str, conference_id: str) -> bool:
        try:
            await self._ask(organizer, delete_conference(conference_id), "cancel it")
        except _Failure as failure:
            if failure.reason == "conferenceDoesNotExist":
                return False
            raise
        return True

    async def _ask(self, organizer: str, command: str, doing: str) -> Element:
        """Send one C3P command as ``organizer``; the command element of a success. Raises
        ConferenceError (or _Failure, for the caller to judge) with words for a person."""
        factory, body = build_request(organizer, command)
        request = new_request(
            "SERVICE",
            parse_uri(factory),
            from_=f"<sip:{organizer}>",
            to=f"<{factory}>",
            content_type=CONTENT_TYPE,
            body=body,
        )
        credentials = self.credentials(organizer) if self.credentials else None
        if self.credentials is None:
            request.headers.add("P-Asserted-Identity", f"<sip:{organizer}>")
        sent = self.endpoint.request(request, destination=self.server, credentials=credentials)
        try:
            response = await asyncio.wait_for(sent, self.timeout)
        except TimeoutError:
            response = make_response(request, 408)
        if response.status != 200:
            diagnostics = response.headers.get("ms-diagnostics")
            log.warning(
                "c3p.refused", organizer=organizer, status=response.status, diagnostics=diagnostics
            )
            raise ConferenceError(_sip_failure(response, doing))
        try:
            answer = parse_response(response.body)
        except C3pError as exc:
            log.warning("c3p.unreadable", organizer=organizer, error=str(exc))
            raise ConferenceError(
                f"The conference server's answer made no sense, so I could not {doing}."
            ) from None
        if answer.code == "failure":
            reason = answer.reason or "otherFailure"
            log.info("c3p.failure", organizer=organizer, reason=reason)
            told = REASONS.get(reason, f"The conference server could not {doing} ({reason}).")
            raise _Failure(reason, told)
        if answer.command is None:
            raise ConferenceError(f"The conference server sent nothing back; I could not {doing}.")
        return answer.command


class _Failure(ConferenceError):
    """A C3P ``code="failure"``; ``reason`` as the server wrote it."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _sip_failure(response: Response, doing: str) -> str:
    if response.status == 408:
        return f"The conference server did not answer in time, so I could not {doing}."
    if response.status == 503:
        return f"The conference server cannot be reached right now, so I could not {doing}."
    diagnostics = response.headers.get("ms-diagnostics") or ""
    said = diagnostics.partition('reason="')[2].partition('"')[0]
    detail = f": {said}" if said else f" ({response.status} {response.reason})"
    return f"The conference server refused{detail}. I could not {doing}."
