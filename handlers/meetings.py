"""my meetings / meeting N: the sender's own conferences (UCMA GetConferenceSummaries and
details), asked for through the sender's own user endpoint."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from bot.commands import CommandContext, UsageError, command
from bot.commands.replies import PAGES, Paged, plural, shorten
from bot.conferencing.models import Conference
from bot.sip.grammar import is_digits

SHOWN = "meetings.shown"  # memory key: the last listing (_Shown), which numbers them
MAX_SUBJECT_BYTES = 120
"""Of a subject in a listing line (``meeting N`` shows it whole)."""
LINES_KEPT = 1024
"""Listing lines kept (conferences of the senders who ask most, a few hundred bytes each)."""


@command(
    "my meetings",
    aliases=("meetings", "my conferences"),
    usage="my meetings",
    feature="my_meetings",
)
async def my_meetings(ctx: CommandContext) -> str | Paged:
    """List the conferences you organise.
    A long list comes a page at a time: send 'more' for the next; the numbers go on."""
    endpoint = await ctx.services.endpoints.get(ctx.sender)
    conferences = tuple(await endpoint.conferences.summaries(datetime.now(UTC)))
    zone = ctx.services.zone
    shown: _Shown | None = ctx.memory.get(SHOWN)
    if shown is None or shown.zone is not zone or shown.conferences != conferences:
        shown = ctx.memory[SHOWN] = _Shown(conferences, zone, _listing(conferences, zone))
    else:  # equal: mostly the very objects (the store keeps them), compared at once next time
        shown.conferences = conferences
    return shown.reply


@dataclass(slots=True)
class _Shown:
    """The sender's last listing, kept in their memory: asked for again, it is the same reply
    while their conferences and the time zone stay the same - and, the very same Paged, its
    first page is found at once too (bot.commands.replies)."""

    conferences: tuple[Conference, ...]
    zone: tzinfo
    reply: str | Paged

    @property
    def ids(self) -> tuple[str, ...]:
        """What 'meeting N' numbers, in order."""
        return tuple(c.conference_id for c in self.conferences)


def _listing(conferences: tuple[Conference, ...], zone: tzinfo) -> str | Paged:
    if not conferences:
        return "You have no upcoming conferences."
    return Paged(
        heading=f"Your conferences ({len(conferences)}):",
        continued=f"Your conferences ({len(conferences)}), continued:",
        items=tuple(
            f"{number}. {_listed(conference, zone)}"
            for number, conference in enumerate(conferences, start=1)
        ),
        footer="Send 'meeting <number>' for the details of one.",
        noun="conference",
    )


@command(
    "meeting",
    aliases=("conference",),
    usage="meeting <number|id>",
    example="meeting 1",
    feature="meeting",
    takes_args=True,
)
async def meeting(ctx: CommandContext) -> str:
    """Show one of your conferences in full, dial-in included."""
    conference = await chosen(ctx)
    return "\n".join(
        [
            conference.subject,
            f"When: {when(conference, ctx)}{until(conference, ctx)}",
            f"Access: {conference.access_level}",
            f"Conference id: {conference.conference_id}",
            f"Join: {conference.uri}",
            f"Dial-in: {conference.dial_in or 'none'}",
        ]
    )


async def chosen(ctx: CommandContext) -> Conference:
    """The conference ``<number|id>`` names: a number of the sender's last listing, or an id.
    Raises UsageError for anything else."""
    if not ctx.args or " " in ctx.args:
        raise UsageError()
    conference_id = ctx.args
    if is_digits(ctx.args):
        shown: _Shown | None = ctx.memory.get(SHOWN)
        listing = shown.ids if shown is not None else ()
        index = int(ctx.args) - 1
        if not listing:
            raise UsageError("Send 'my meetings' first to number your conferences.")
        if not 0 <= index < len(listing):
            raise UsageError(f"Your last listing has {plural(len(listing), 'conference')}.")
        conference_id = listing[index]
    endpoint = await ctx.services.endpoints.get(ctx.sender)
    conference: Conference | None = await endpoint.conferences.details(conference_id)
    if conference is None:
        raise UsageError(f"You have no conference '{conference_id}'.")
    return conference


def forget_listing(ctx: CommandContext) -> None:
    """The conferences changed: the numbers of the last listing, and its pages, no longer
    hold."""
    ctx.memory.pop(SHOWN, None)
    ctx.memory.pop(PAGES, None)


@functools.lru_cache(maxsize=LINES_KEPT)
def _listed(conference: Conference, zone: tzinfo) -> str:
    """A conference's line in a listing, after its number (kept: a function of the conference
    and the time zone only, and the same listings are asked for again and again)."""
    return (
        f"{shorten(conference.subject, MAX_SUBJECT_BYTES)} - {_when(conference, zone)} - "
        f"{conference.access_level} - id {conference.conference_id} - {conference.uri}"
    )


def when(conference: Conference, ctx: CommandContext) -> str:
    return _when(conference, ctx.services.zone)


def _when(conference: Conference, zone: tzinfo) -> str:
    if conference.start is None:
        return f"no fixed time, until {at(conference.expiry, zone):%a %d %b}"
    return f"{at(conference.start, zone):%a %d %b %H:%M %Z}"


def until(conference: Conference, ctx: CommandContext) -> str:
    end = conference.end
    return f" to {at(end, ctx.services.zone):%H:%M}" if end is not None else ""


def at(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` in ``zone`` (the configured time zone)."""
    return moment.astimezone(zone)
