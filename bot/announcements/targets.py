"""What ``announce``/``play`` name and whether the sender may: ``<n|id|sip-uri>`` resolved for
the sender, checked against ``announcements.who`` / ``.uris`` (ACL roles; admins are
``acl.admins``). No chat-layer import: the command hands in how to find the sender's own
conference (handlers.meetings.chosen)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.conferencing.models import Conference
from bot.config.announcing import AnnouncementsConfig
from bot.errors import Refusal
from bot.sender import Sender
from bot.sip.errors import SipParseError
from bot.sip.uri import SipUri, parse_uri

Target = Conference | str
"""A conference of the sender's, or a SIP URI (a person, a bridge, a conference URI)."""

CONFERENCE_URI_HINT = (
    "Another organizer's conference is named by its URI (sip:...;opaque=app:conf:focus:id:...)."
)
"""For admins: the store answers each organizer for their own conferences only, so an id of
someone else's conference finds nothing - its URI reaches it."""


class NotATarget(Refusal):
    """A word that names nothing the bot can call."""


async def resolve(
    word: str,
    *,
    sender: Sender,
    is_admin: bool,
    settings: AnnouncementsConfig,
    choose: Callable[[str], Awaitable[Conference]],
) -> Target:
    """The target ``word`` names for ``sender``: a SIP URI, else whatever ``choose`` makes of
    it (a number of their last listing or one of their ids). Refusal for what they may not
    name; ``choose``'s own errors pass through."""
    may_announce(settings, is_admin=is_admin)
    if word.lower().startswith(("sip:", "sips:")):
        uri = sip_uri(word)
        may_name_uri(settings, is_admin=is_admin)
        return uri
    conference = await choose(word)
    if settings.who == "organizers" and not is_admin and conference.organizer != sender.address:
        raise Refusal("Sorry, you may announce only into conferences you organise.")
    return conference


def may_announce(settings: AnnouncementsConfig, *, is_admin: bool) -> None:
    """``announcements.who``: admins only, or anyone (into what they may name)."""
    if settings.who == "admins" and not is_admin:
        raise Refusal("Sorry, only administrators may make announcements here.")


def may_name_uri(settings: AnnouncementsConfig, *, is_admin: bool) -> None:
    """``announcements.uris``: who may name a SIP URI instead of a conference."""
    if settings.uris == "admins" and not is_admin:
        raise Refusal(
            "Sorry, only administrators may name a SIP URI. Name one of your conferences "
            "instead: its number in 'my meetings' or its id."
        )


def sip_uri(word: str) -> str:
    """``word`` as a SIP URI with a host, or NotATarget saying what is wrong."""
    try:
        uri = parse_uri(word)
    except SipParseError:
        uri = None
    if not isinstance(uri, SipUri) or uri.headers:
        raise NotATarget(f"'{word}' is not a SIP URI I can call (e.g. sip:bob@example.test).")
    return str(uri)


def is_conference_uri(target: str) -> bool:
    """A Lync/SfB focus URI (``...;opaque=app:conf:focus:id:<ID>``, LYNC.md §2.2): joined
    through the focus (bot.calls.join), not called like a person."""
    return ";opaque=app:conf:focus" in target.lower()


def described(target: Target) -> str:
    """How a reply names the target: the subject of a conference, else the URI."""
    return f"'{target.subject}'" if isinstance(target, Conference) else target
