"""C3P (CCCP) requests as a Lync / Skype for Business focus factory and focus take them.

The envelope is MS-CONFPRO §2.2.2: a ``<request>`` in urn:ietf:params:xml:ns:cccp with
``C3PVersion="1"``, a ``requestId`` unique per sender, ``from`` = the organizer, ``to`` = the
To URI, and exactly one command child. pidgin-sipe (``src/core/sipe-conf.c``), which real servers
accept, also declares ``xmlns:mscp`` on it; so does the bot. The commands:

- getConferences (§3.1.4.4), getConference (§4.5): ``conferenceKeys`` with
  ``msci:conference-id``; getAvailableMcuTypes (§4.7), before an addConference.
- addConference (§4.1, and as pidgin-sipe builds it): a ``conference-info`` with ``entity=""``,
  the conference id, ``expiry-time`` and ``admission-policy`` in its description,
  ``conference-state/locked`` for a locked one, and a ``conference-view`` with one
  ``entity-view`` per MCU the conference needs. Nothing else: the schema has no start or end
  time (the bot keeps those itself), and an element it does not know costs a 3006.
- deleteConference (MS-CONFBAS §2.2.3.14): sent to the *focus*, ``conferenceKeys
  confEntity="<focus URI>"``; the focus-factory form has no published example.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from bot.conferencing.services import EXPIRY_AFTER_END, NewConference

CCCP = "urn:ietf:params:xml:ns:cccp"
CONFERENCE_INFO = "urn:ietf:params:xml:ns:conference-info"
MSCI = "http://schemas.microsoft.com/rtc/2005/08/confinfoextensions"
MSCP = "http://schemas.microsoft.com/rtc/2005/08/cccpextensions"
CONTENT_TYPE = "application/cccp+xml"
# The access levels the bot shows (UCMA ConferenceAccessLevel) -> msci:admission-policy, whose
# values are UCMA's three (closedAuthenticated, openAuthenticated, anonymous). "locked" is not
# a policy: it is conference-state/locked on a closed conference (MS-CONFPRO §4.1).
POLICY = {
    "everyone": "anonymous",
    "same-enterprise": "openAuthenticated",
    "invited": "closedAuthenticated",
    "locked": "closedAuthenticated",
}
WANTED_MCUS = ("chat", "audio-video")
"""The MCUs a conference gets views for, when the server offers them: what a join needs
(LYNC.md §2)."""

_request_ids = itertools.count(1)


def factory_uri(organizer: str) -> str:
    """The organizer's focus factory (MS-CONFPRO §2.2.2)."""
    return f"sip:{organizer};gruu;opaque=app:conf:focusfactory"


def focus_uri(organizer: str, conference_id: str) -> str:
    """A conference's focus, as pidgin-sipe builds it from organizer and id."""
    return f"sip:{organizer};gruu;opaque=app:conf:focus:id:{conference_id}"


def build_request(organizer: str, command: str, to: str | None = None) -> tuple[str, bytes]:
    """The target URI (``to``, by default the focus factory) and the ``<request>`` body
    carrying ``command`` (XML)."""
    target = to or factory_uri(organizer)
    body = (
        f'<?xml version="1.0" encoding="utf-8"?>\r\n'
        f'<request xmlns="{CCCP}" xmlns:msci="{MSCI}" xmlns:mscp="{MSCP}" C3PVersion="1" '
        f'requestId="{next(_request_ids)}" from={quoteattr("sip:" + organizer)} '
        f"to={quoteattr(target)}>{command}</request>"
    )
    return target, body.encode()


def get_conferences() -> str:
    return "<getConferences/>"


def get_conference(conference_id: str) -> str:
    return (
        f"<getConference><conferenceKeys msci:conference-id={quoteattr(conference_id)}/>"
        "</getConference>"
    )


def get_available_mcu_types() -> str:
    return "<getAvailableMcuTypes/>"


def delete_conference(focus: str) -> str:
    """MS-CONFBAS §2.2.3.14: to the focus, keyed by its URI."""
    return f"<deleteConference><conferenceKeys confEntity={quoteattr(focus)}/></deleteConference>"


def add_conference(conference_id: str, new: NewConference, mcus: tuple[str, ...]) -> str:
    """MS-CONFPRO §4.1 / pidgin-sipe: id, expiry, admission policy, lock, one view per MCU."""
    expiry = new.start + new.duration + EXPIRY_AFTER_END
    policy = POLICY.get(new.access_level, "openAuthenticated")
    state = (
        "<ci:conference-state><ci:locked>true</ci:locked></ci:conference-state>"
        if new.access_level == "locked"
        else ""
    )
    views = "".join(f"<msci:entity-view entity={quoteattr(mcu)}/>" for mcu in mcus)
    view = f"<msci:conference-view>{views}</msci:conference-view>" if views else ""
    return (
        f'<addConference><ci:conference-info xmlns:ci="{CONFERENCE_INFO}" entity="">'
        f"<ci:conference-description><ci:subject>{escape(new.subject)}</ci:subject>"
        f"<msci:conference-id>{conference_id}</msci:conference-id>"
        f"<msci:expiry-time>{stamp(expiry)}</msci:expiry-time>"
        f"<msci:admission-policy>{policy}</msci:admission-policy>"
        f"</ci:conference-description>{state}{view}</ci:conference-info></addConference>"
    )


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
