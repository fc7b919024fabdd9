"""The C3P ``addUser`` that joins a Lync / Skype for Business focus (MS-CONFBAS §2.2.3.4), sans-IO.

The join is an INVITE to the focus URI whose body is not SDP but a C3P request (pidgin-sipe
sipe-conf.c; LYNC.md §2.2 and §2.6): the user to add, the roles asked for, and one endpoint
whose entity is a GUID written *with its braces* (``{…}``), carrying ``clientInfo`` /
``lobby-capable`` as MS-CONFBAS's example does. The focus answers 200 with a C3P
``<response code="success">`` echoing ``addUser`` with the role it *granted*, which "might be
different from the requested role … because of policy" (§2.2.3.4); a ``failure`` names its
reason on the command element (MS-CONFPRO §3.1.5.3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from bot.conferencing.c3p_wire import CCCP, CONFERENCE_INFO, CONTENT_TYPE, MSCI

__all__ = [
    "CONTENT_TYPE",
    "AddUser",
    "AddUserError",
    "Granted",
    "new_endpoint",
    "parse_add_user_response",
]
MSCP = "http://schemas.microsoft.com/rtc/2005/08/cccpextensions"
FOCUS_HEADERS = (("Supported", "ms-sender"),)
"""Extra headers of the focus INVITE (pidgin-sipe ``sipe_invite_conf_focus``)."""
MAX_RESPONSE = 64 * 1024
"""An addUser response echoes one user: anything bigger is not one."""


def new_endpoint() -> str:
    """A fresh endpoint entity, braces included, as pidgin-sipe writes it (``{GUID}``)."""
    return "{" + str(uuid.uuid4()).upper() + "}"


class AddUserError(ValueError):
    """An answer that is not a C3P addUser response (the sentence says what was wrong)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AddUser:
    """One addUser request: who joins which focus, as what."""

    focus: str
    """The focus URI: Request-URI, To, ``to`` and ``conferenceKeys/@confEntity``."""
    user: str
    """Our own URI (``sip:bot@example.test``): ``from`` and ``user/@entity``."""
    request_id: int
    endpoint: str
    """Our endpoint's entity: a GUID with its braces (:func:`new_endpoint`)."""
    role: str = "attendee"
    """What we ask for; the focus decides (trusted applications are made presenters)."""

    def body(self) -> bytes:
        """The request, as pidgin-sipe writes it plus MS-CONFBAS's clientInfo."""
        focus = quoteattr(self.focus)
        return (
            '<?xml version="1.0"?>\r\n'
            f'<request xmlns="{CCCP}" xmlns:mscp="{MSCP}" C3PVersion="1" to={focus} '
            f"from={quoteattr(self.user)} requestId={quoteattr(str(self.request_id))}>"
            f"<addUser><conferenceKeys confEntity={focus}/>"
            f'<ci:user xmlns:ci="{CONFERENCE_INFO}" entity={quoteattr(self.user)}>'
            f"<ci:roles><ci:entry>{escape(self.role)}</ci:entry></ci:roles>"
            f'<ci:endpoint entity={quoteattr(self.endpoint)} xmlns:msci="{MSCI}">'
            "<msci:clientInfo><msci:lobby-capable>true</msci:lobby-capable></msci:clientInfo>"
            "</ci:endpoint></ci:user></addUser></request>"
        ).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Granted:
    """What the focus answered to addUser."""

    success: bool
    reason: str | None = None
    """The failure reason (MS-CONFPRO §2.2.3.4), when not a success."""
    roles: tuple[str, ...] = ()
    """The roles granted (``presenter``, ``attendee``…): may differ from those asked."""
    in_lobby: bool = False
    """The focus parked us in the lobby (``msci:lobby`` / a ``pending`` endpoint status)."""


def parse_add_user_response(body: bytes, request: AddUser) -> Granted:
    """Read the focus's answer to ``request``; :class:`AddUserError` when it is none."""
    if len(body) > MAX_RESPONSE:
        raise AddUserError(f"addUser response of {len(body)} bytes")
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise AddUserError(f"addUser response is not XML: {exc}") from None
    if root.tag != f"{{{CCCP}}}response":
        raise AddUserError(f"not a C3P response: {root.tag}")
    if root.get("requestId") != str(request.request_id):
        raise AddUserError(f"response to request {root.get('requestId')!r}, not ours")
    command = root.find(f"{{{CCCP}}}addUser")
    code = root.get("code")
    if command is None or code not in ("success", "failure"):
        raise AddUserError(f"not an addUser response (code {code!r})")
    if code == "failure":
        return Granted(success=False, reason=command.get("reason") or root.get("reason"))
    user = _our_user(command, request.user)
    if user is None:
        return Granted(success=True)
    roles = tuple((e.text or "").strip() for e in user.iterfind(f"{_ci('roles')}/{_ci('entry')}"))
    statuses = {(s.text or "").strip() for s in user.iter(_ci("status"))}
    in_lobby = "pending" in statuses or any(e.tag == f"{{{MSCI}}}lobby" for e in user.iter())
    return Granted(success=True, roles=tuple(r for r in roles if r), in_lobby=in_lobby)


def _ci(local: str) -> str:
    return f"{{{CONFERENCE_INFO}}}{local}"


def _our_user(command: Element, entity: str) -> Element | None:
    users = list(command.iter(_ci("user")))
    return next((u for u in users if u.get("entity") == entity), users[0] if users else None)
