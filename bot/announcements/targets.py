"""What ``announce``/``play`` name and whether the sender may: ``<n|id|sip-uri>`` resolved for
the sender, then ``announcements.who`` / ``.uris`` checked (ACL roles; admins from
``acl.admins``)."""

from __future__ import annotations

from dataclasses import replace

from bot.commands import CommandContext, UsageError
from bot.conferencing.models import Conference
from bot.errors import Refusal
from bot.sip.errors import SipParseError
from bot.sip.uri import SipUri, parse_uri
from handlers.meetings import chosen

Target = Conference | str
"""A conference of the sender's, or a SIP URI (a person, a bridge, a conference URI)."""

CONFERENCE_URI_HINT = (
    "Another organizer's conference is named by its URI (sip:...;opaque=app:conf:focus:id:...)."
)


async def resolve(ctx: CommandContext, word: str) -> Target:
    """The target ``word`` names for ``ctx.sender``, checked against the ACL: a number of
    their last listing, one of their conference ids, or a SIP URI. Raises UsageError for what
    names nothing, Refusal for what they may not name."""
    may_announce(ctx)
    if word.lower().startswith(("sip:", "sips:")):
        uri = sip_uri(word)
        may_name_uri(ctx)
        return uri
    try:
        conference = await chosen(replace(ctx, args=word))
    except UsageError as exc:
        if ctx.is_admin and str(exc).startswith("You have no conference"):
            raise UsageError(f"{exc} {CONFERENCE_URI_HINT}") from None
        raise
    if ctx.config.announcements.who == "organizers" and not ctx.is_admin:
        if conference.organizer != ctx.sender.address:  # the store shows only theirs anyway
            raise Refusal("Sorry, you may announce only into conferences you organise.")
    return conference


def may_announce(ctx: CommandContext) -> None:
    """``announcements.who``: admins only, or anyone (into what they may name)."""
    if ctx.config.announcements.who == "admins" and not ctx.is_admin:
        raise Refusal("Sorry, only administrators may make announcements here.")


def may_name_uri(ctx: CommandContext) -> None:
    """``announcements.uris``: who may name a SIP URI instead of a conference."""
    if ctx.config.announcements.uris == "admins" and not ctx.is_admin:
        raise Refusal(
            "Sorry, only administrators may name a SIP URI. Name one of your conferences "
            "instead: its number in 'my meetings' or its id."
        )


def sip_uri(word: str) -> str:
    """``word`` as a SIP URI with a host, or UsageError saying what is wrong."""
    try:
        uri = parse_uri(word)
    except SipParseError:
        uri = None
    if not isinstance(uri, SipUri) or uri.headers:
        raise UsageError(f"'{word}' is not a SIP URI I can call (e.g. sip:bob@example.test).")
    return str(uri)


def is_conference_uri(target: str) -> bool:
    """A Lync/SfB focus URI (MS-CONFBAS §2.2.1: ``opaque=app:conf:focus:...``): joined through
    the focus, not called like a person."""
    return ";opaque=app:conf:focus" in target.lower()


def described(target: Target) -> str:
    """How a reply names the target: the subject of a conference, else the URI."""
    return f"'{target.subject}'" if isinstance(target, Conference) else target
