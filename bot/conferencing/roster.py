"""The roster of a conference from the conference event package (RFC 4575), sans-IO.

A :class:`Roster` holds what the focus last told us and absorbs each ``conference-info`` body
(the SUBSCRIBE 2xx body of ``ms-piggyback-first-notify``, a NOTIFY or a BENOTIFY):

- ``state="full"`` replaces everything (RFC 4575 §5.1; a full document is self-contained,
  and a refresh or a new subscription starts again with one, so it is taken whatever its
  version);
- ``state="partial"`` is merged only when its ``version`` is the last one plus one; one we
  have seen (or older) is dropped, and a gap means a notification was lost: the subscriber
  subscribes again for a full state (``resync``; RFC 4575 §3.7 and the ``version`` attribute
  of §5.1);
- inside a partial document, ``users``, ``user`` and ``endpoint`` carry their own ``state``
  (full | partial | deleted, RFC 4575 §5): full replaces that element, partial merges it
  child by child, deleted removes it; children without a state attribute replace their
  namesake when present.

The Lync / Skype for Business focus (MS-CONFBAS §2.2.2.2) extends the same document: the MCU
URIs are ``conference-description/conf-uris/entry`` by ``purpose`` (chat, audio-video,
applicationsharing), endpoints carry ``session-type`` (focus, chat, audio-video) and the
roles are ``presenter`` / ``attendee``; unknown elements and namespaces are ignored.
Bodies come from the network: parsed with defusedxml, bounded in size and user count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

T = TypeVar("T")
"""A roster entry merged by its entity: a user or an endpoint."""

CONFERENCE_INFO = "urn:ietf:params:xml:ns:conference-info"
CONTENT_TYPE = "application/conference-info+xml"
MAX_BODY = 256 * 1024
"""Largest body parsed, in bytes: a 10,000-user full document of a real focus is ~4 MB, but the
bot needs the roster of conferences it announces into, not of auditoriums; bigger is refused
rather than parsed on the event loop."""
MAX_USERS = 10_000
"""Most users kept: a bound on memory whatever the focus sends."""
_STATES = ("full", "partial", "deleted")


class RosterError(ValueError):
    """A body that is not a conference-info document we can use (the sentence says why)."""


def _ci(local: str) -> str:
    return f"{{{CONFERENCE_INFO}}}{local}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One device or session of a user (the ``endpoint`` element, RFC 4575 §5)."""

    entity: str
    status: str | None = None
    """connected, disconnected, on-hold, muted-via-focus, pending, alerting, dialing-in,
    dialing-out or disconnecting (RFC 4575 §5)."""
    session_type: str | None = None
    """Lync: which MCU this endpoint is in (``focus``, ``chat``, ``audio-video``)."""
    joining_method: str | None = None
    display_text: str | None = None
    media: tuple[str, ...] = ()
    """The ``type`` of each media stream (audio, video, ...)."""

    @property
    def connected(self) -> bool:
        return self.status == "connected"


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """One participant (the ``user`` element, RFC 4575 §5) and their endpoints by entity."""

    entity: str
    display_text: str | None = None
    roles: tuple[str, ...] = ()
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def connected(self) -> bool:
        """In the conference now: at least one endpoint connected."""
        return any(e.connected for e in self.endpoints.values())


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterChange:
    """What one body changed."""

    version: int | None
    full: bool = False
    """The body was a full state (the first one, or after a re-subscription)."""
    joined: tuple[str, ...] = ()
    """Users (entities) connected now and not before, in document order."""
    left: tuple[str, ...] = ()
    """Users connected before and not now (gone, or every endpoint disconnected)."""
    resync: bool = False
    """A notification was lost (a version gap, or a partial before any full): subscribe
    again for the full state (RFC 4575 §3.7, §5.1)."""
    stale: bool = False
    """A version already applied: dropped."""


@dataclass(slots=True)
class Roster:
    entity: str | None = None
    """The conference URI the focus speaks for."""
    version: int | None = None
    """The last version applied; None before the first full state."""
    subject: str | None = None
    conf_uris: dict[str, str] = field(default_factory=dict)
    """purpose -> URI (``audio-video``, ``chat``, ... on Lync; ``conf-uris``, RFC 4575 §5)."""
    locked: bool | None = None
    users: dict[str, User] = field(default_factory=dict)
    """entity -> user, in document order."""

    def apply(self, body: bytes) -> RosterChange:
        """Absorb one conference-info body; raises :class:`RosterError` for one that is not
        (the roster is then unchanged)."""
        root = _parse(body)
        state = root.get("state", "full")
        version = _version(root.get("version"))
        before = self.connected()
        if state == "full":
            self._replace(root)
        elif state == "partial":
            if self.version is None or version > self.version + 1:
                return RosterChange(version=version, resync=True)
            if version <= self.version:
                return RosterChange(version=version, stale=True)
            self._merge(root)
        else:  # deleted: the conference is gone (§5.1)
            self._clear()
            self.entity = root.get("entity")
        self.version = version
        after = self.connected()
        return RosterChange(
            version=version,
            full=state == "full",
            joined=tuple(e for e in after if e not in before),
            left=tuple(e for e in before if e not in after),
        )

    def connected(self) -> list[str]:
        """Entities of the users in the conference now, in document order."""
        return [entity for entity, user in self.users.items() if user.connected]

    # --- full and partial documents ----------------------------------------------------------

    def _clear(self) -> None:
        self.subject = None
        self.conf_uris = {}
        self.locked = None
        self.users = {}

    def _replace(self, root: Element) -> None:
        users: dict[str, User] = {}
        _merge_users(users, root.find(_ci("users")), full=True)
        self._clear()
        self.entity = root.get("entity")
        self._describe(root)
        self.users = users

    def _merge(self, root: Element) -> None:
        users = dict(self.users)
        found = root.find(_ci("users"))
        if found is not None:
            state = found.get("state", "full")
            _merge_users(users, found, full=state != "partial")
        self._describe(root)
        self.users = users

    def _describe(self, root: Element) -> None:
        """conference-description and conference-state: replaced when present (they carry no
        state attribute, so a partial document sends them whole, RFC 4575 §5)."""
        description = root.find(_ci("conference-description"))
        if description is not None:
            self.subject = _text(description, "subject")
            self.conf_uris = {}
            for entry in description.iterfind(f"{_ci('conf-uris')}/{_ci('entry')}"):
                uri, purpose = _text(entry, "uri"), _text(entry, "purpose")
                if uri and purpose and purpose not in self.conf_uris:
                    self.conf_uris[purpose] = uri
        conference_state = root.find(_ci("conference-state"))
        if conference_state is not None:
            locked = _text(conference_state, "locked")
            self.locked = None if locked is None else locked == "true"


def _parse(body: bytes) -> Element:
    if len(body) > MAX_BODY:
        raise RosterError(f"conference-info body of {len(body)} bytes (at most {MAX_BODY})")
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise RosterError(f"conference-info body is not XML: {exc}") from None
    if root.tag != _ci("conference-info"):
        raise RosterError(f"not a conference-info document: {root.tag}")
    if root.get("state", "full") not in _STATES:
        raise RosterError(f"conference-info state {root.get('state')!r}")
    return root


def _version(text: str | None) -> int:
    # RFC 4575 §5.1: version is mandatory, an unsigned int (a bound keeps it an int32)
    if text is None or not text.isdigit() or len(text) > 10:
        raise RosterError(f"conference-info version {text!r}")
    return int(text)


def _merge_users(users: dict[str, User], element: Element | None, *, full: bool) -> None:
    """Apply a ``users`` element to ``users`` (state full: replace the whole list first)."""
    if element is None:
        return
    if full:
        users.clear()
    _merge_by_entity(users, element, "user", _user)
    if len(users) > MAX_USERS:
        raise RosterError(f"more than {MAX_USERS} users")


def _user(element: Element, entity: str, known: User | None) -> User:
    """A user from a full element, or ``known`` with the children of a partial one merged."""
    user = known or User(entity=entity)
    display = element.find(_ci("display-text"))
    if display is not None:
        user = replace(user, display_text=(display.text or "").strip() or None)
    roles = element.find(_ci("roles"))
    if roles is not None:
        user = replace(user, roles=_entries(roles))
    endpoints = dict(user.endpoints)
    _merge_by_entity(endpoints, element, "endpoint", _endpoint)
    return replace(user, endpoints=endpoints)


def _merge_by_entity(
    table: dict[str, T], parent: Element, tag: str, build: Callable[[Element, str, T | None], T]
) -> None:
    """The ``tag`` children of ``parent`` into ``table`` by their ``entity`` (RFC 4575 §4.2,
    §5): state deleted removes one, partial merges into the one known, full replaces it."""
    for child in parent.iterfind(_ci(tag)):
        entity = child.get("entity")
        if not entity:
            continue
        state = child.get("state", "full")
        if state == "deleted":
            table.pop(entity, None)
            continue
        known = table.get(entity) if state == "partial" else None
        table[entity] = build(child, entity, known)


def _endpoint(element: Element, entity: str, known: Endpoint | None) -> Endpoint:
    """An endpoint from a full element, or ``known`` with what a partial one carries."""
    endpoint = known or Endpoint(entity=entity)

    def child(local: str, kept: str | None) -> str | None:
        return _text(element, local) if element.find(_ci(local)) is not None else kept

    media = element.findall(_ci("media"))
    return Endpoint(
        entity=entity,
        status=child("status", endpoint.status),
        session_type=element.get("session-type", endpoint.session_type),
        joining_method=child("joining-method", endpoint.joining_method),
        display_text=child("display-text", endpoint.display_text),
        media=tuple(t for m in media if (t := _text(m, "type"))) if media else endpoint.media,
    )


def _entries(element: Element) -> tuple[str, ...]:
    return tuple(_strip(e.text) for e in element.iterfind(_ci("entry")) if _strip(e.text))


def _text(element: Element, local: str) -> str | None:
    found = element.find(_ci(local))
    return _strip(found.text) or None if found is not None else None


def _strip(text: str | None) -> str:
    return (text or "").strip()
