"""schedule / cancel: new conferences and cancelled ones, for the sender only (UCMA
ConferenceServices.BeginScheduleConference / BeginCancelConference)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.commands import CommandContext, command
from bot.commands.context import CONFIRMATION
from bot.commands.dispatcher import UsageError
from bot.conferencing.services import NewConference
from bot.conferencing.when import WhenError, parse_duration, parse_when
from handlers.meetings import LISTING, chosen, when

_PARTS = re.compile(r"^(?P<subject>.+?)(?:\s+at\s+(?P<at>.+?))?(?:\s+for\s+(?P<for>\S+))?$")


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
    ctx.memory.pop(LISTING, None)  # the numbers of the last listing no longer hold
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
    ctx.memory[CONFIRMATION] = conference.conference_id
    return (
        f"Cancel '{conference.subject}' ({when(conference, ctx)}, id "
        f"{conference.conference_id})? Send 'yes' to cancel it, anything else keeps it."
    )


@command("yes", usage="yes", feature="cancel")
async def yes(ctx: CommandContext) -> str:
    """Confirm a cancellation you asked for."""
    conference_id = ctx.memory.pop(CONFIRMATION, None)
    if conference_id is None:
        return "There is nothing waiting for a 'yes'."
    endpoint = await ctx.services.endpoints.get(ctx.sender)
    if not await endpoint.conferences.cancel(conference_id):
        return f"Conference {conference_id} was already gone."
    ctx.memory.pop(LISTING, None)
    return f"Cancelled conference {conference_id}."
