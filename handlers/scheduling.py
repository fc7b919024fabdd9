"""schedule / cancel: new conferences and cancelled ones, for the sender only (UCMA
ConferenceServices.BeginScheduleConference / BeginCancelConference)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.commands import CommandContext, UsageError, command
from bot.commands.context import CONFIRMATION
from bot.conferencing.services import NewConference
from bot.conferencing.when import WhenError, parse_duration, parse_when
from handlers.meetings import chosen, forget_listing, when

_PARTS = re.compile(r"^(?P<subject>.+?)(?:\s+at\s+(?P<at>.+?))?(?:\s+for\s+(?P<for>\S+))?$")


@dataclass(frozen=True, slots=True)
class Pending:
    """A cancellation waiting for 'yes' or 'no' (memory key CONFIRMATION)."""

    conference_id: str
    subject: str


@command(
    "schedule",
    usage="schedule <subject> [at <when>] [for <duration>]",
    example="schedule Budget review at tomorrow 14:00 for 45m",
    feature="schedule",
    takes_args=True,
)
async def schedule(ctx: CommandContext) -> str:
    """Schedule a conference you organise.
    <when>: 14:30, today 16:00, tomorrow 9:00, in 2h or 2026-12-01T10:00 (the bot's time zone).
    <duration>: 30m, 1h, 1h30m; one hour when not given."""
    m = _PARTS.match(ctx.args.strip())
    if not ctx.args.strip() or m is None:
        raise UsageError()
    now = datetime.now(UTC)
    if _is_time(m["subject"], now, ctx.services.zone):
        raise UsageError("Say what the conference is about before when it is.")
    try:
        start = parse_when(m["at"], now, ctx.services.zone) if m["at"] else now
        duration = (
            parse_duration(m["for"])
            if m["for"]
            else timedelta(minutes=ctx.config.conferences.default_duration)
        )
    except WhenError as exc:
        raise UsageError(f"{exc}.") from None
    if start + duration < now:
        raise UsageError("That time has passed.")
    endpoint = await ctx.services.endpoints.get(ctx.sender)
    conference = await endpoint.conferences.schedule(
        NewConference(subject=m["subject"].strip(), start=start, duration=duration)
    )
    forget_listing(ctx)
    return (
        f"Scheduled: {conference.subject} - {when(conference, ctx)} for "
        f"{int(duration.total_seconds() // 60)} min - id {conference.conference_id} - "
        f"{conference.uri}"
    )


@command(
    "cancel",
    usage="cancel <number|id>",
    example="cancel 2",
    feature="cancel",
    takes_args=True,
)
async def cancel(ctx: CommandContext) -> str:
    """Cancel one of your conferences (you confirm with 'yes')."""
    conference = await chosen(ctx)
    ctx.memory[CONFIRMATION] = Pending(
        conference_id=conference.conference_id, subject=conference.subject
    )
    return (
        f"Cancel '{conference.subject}' ({when(conference, ctx)}, id "
        f"{conference.conference_id})? Send 'yes' to cancel it, anything else keeps it."
    )


@command("yes", usage="yes", feature="cancel", answers_question=True)
async def yes(ctx: CommandContext) -> str:
    """Confirm a cancellation you asked for."""
    pending: Pending | None = ctx.memory.pop(CONFIRMATION, None)
    if pending is None:
        return "There is nothing waiting for a 'yes'."
    endpoint = await ctx.services.endpoints.get(ctx.sender)
    if not await endpoint.conferences.cancel(pending.conference_id):
        return f"Conference {pending.conference_id} was already gone."
    forget_listing(ctx)
    return f"Cancelled conference {pending.conference_id}."


@command("no", usage="no", feature="cancel", answers_question=True)
async def no(ctx: CommandContext) -> str:
    """Keep the conference you were about to cancel."""
    pending: Pending | None = ctx.memory.pop(CONFIRMATION, None)
    if pending is None:
        return "There is nothing waiting for a 'no'."
    return f"Kept '{pending.subject}' (id {pending.conference_id}): nothing was cancelled."


def _is_time(subject: str, now: datetime, zone: ZoneInfo) -> bool:
    """``at 10:00`` or ``for 30m`` where the subject should be: no subject at all. (A subject
    that merely starts with the word, "At risk review", is one.)"""
    word, _, rest = subject.partition(" ")
    if word.lower() in ("at", "for") and not rest.strip():
        return True
    try:
        if word.lower() == "at":
            parse_when(rest, now, zone)
        elif word.lower() == "for":
            parse_duration(rest)
        else:
            return False
    except WhenError:
        return False
    return True
