"""Reading C3P answers from a focus factory or focus, as real servers write them.

The answer is a ``<response>`` (MS-CONFPRO §2.2.3) with ``requestId``, ``from``, ``to`` and
``code="success|failure"``, holding one child named after the command; a failure's ``reason``
sits on that child, not on the root (§3.1.5.3: "reading the reason attribute from the
addConference element"). Conferences come as ``conference-info`` elements (RFC 4575, with the
``msci`` extensions of §2.2.1.2) wherever the server put them: real getConferences answers wrap
them one element deeper. ``entity`` may be empty (the §4.5 getConference answer has
``entity=""``) and summaries may lack ``msci:conference-id``: each is derived from the other
(``…;opaque=app:conf:focus:id:<ID>``). XML from the network is parsed with defusedxml,
tolerating elements and namespaces it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from bot.conferencing.c3p_wire import CCCP, CONFERENCE_INFO, focus_uri
from bot.conferencing.models import Conference

NEVER = datetime.max.replace(tzinfo=UTC)
FOCUS_ID = ";opaque=app:conf:focus:id:"
# msci:admission-policy -> the access levels the bot shows (UCMA ConferenceAccessLevel)
ADMISSION = {
    "anonymous": "everyone",
    "openAuthenticated": "same-enterprise",
    "closedAuthenticated": "invited",
}
# MS-CONFPRO §2.2.3.4 failure reasons, in words a person understands
REASONS = {
    "conferenceDoesNotExist": "That conference does not exist (any more).",
    "conferenceExists": "A conference with that id exists already.",
    "invalidConferenceId": "The conference server refused the conference id.",
    "invalidExpiryTime": "The conference server refused the end time.",
    "invalidAdmissionPolicy": "The conference server refused the access level.",
    "maximumConferencesExceeded": "You have as many conferences as the server allows; "
    "cancel one first.",
    "mcuTypeNotAvailable": "The conference server has no room for audio or chat right now.",
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
    """A failure's reason, from the command element (§3.1.5.3)."""
    command: Element | None
    """The child named after the command (``<getConferences>`` …), when there is one."""


class C3pError(ValueError):
    """A body that is not a C3P response."""


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
    return C3pResponse(code, command.get("reason") if command is not None else None, command)


def conferences_in(element: Element, organizer: str) -> list[Conference]:
    """Every conference-info below ``element``, wherever the server put it (no wrapper
    element assumed); an entry with neither a focus URI nor an id is skipped."""
    found = []
    for info in element.iter(f"{{{CONFERENCE_INFO}}}conference-info"):
        conference = _conference(info, organizer)
        if conference is not None:
            found.append(conference)
    return found


def mcu_types_in(element: Element) -> tuple[str, ...]:
    """The ``mcuType`` texts of a getAvailableMcuTypes answer (MS-CONFPRO §4.7)."""
    return tuple(
        (e.text or "").strip() for e in element.iter() if e.tag.rpartition("}")[2] == "mcuType"
    )


def _conference(info: Element, organizer: str) -> Conference | None:
    entity = info.get("entity") or ""
    conference_id = _find(info, "conference-id") or entity.partition(FOCUS_ID)[2]
    if not conference_id:
        return None
    locked = (_find(info, "locked") or "").lower() == "true"
    policy = ADMISSION.get(_find(info, "admission-policy") or "", "same-enterprise")
    return Conference(
        conference_id=conference_id,
        organizer=organizer,
        subject=_find(info, "subject") or "(no subject)",
        uri=entity or focus_uri(organizer, conference_id),
        access_level="locked" if locked else policy,
        start=None,
        end=None,
        expiry=_time(_find(info, "expiry-time")) or NEVER,
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
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
