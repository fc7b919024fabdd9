"""announce / play: the bot joins one of the sender's conferences (or calls a SIP URI), speaks a
sentence or plays a clip, leaves, and says how it went (bot.announcements)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.announcements.service import Announced, Announcer, Sounds
from bot.announcements.targets import CONFERENCE_URI_HINT, Target, is_conference_uri, resolve
from bot.commands import CommandContext, UsageError, command
from bot.conferencing.models import Conference
from bot.errors import Refusal
from handlers.meetings import chosen

MAX_TEXT = 500
"""Characters of a sentence to speak: about half a minute of speech at 160 words a minute,
already a long announcement."""


@command(
    "announce",
    usage="announce <number|id|sip-uri> <text>",
    example="announce 1 The review moves to room 4",
    feature="announce",
    takes_args=True,
)
async def announce(ctx: CommandContext) -> str:
    """Say a sentence in one of your conferences (text to speech), then leave.
    <number>: from your last 'my meetings'; <id>: a conference id; a SIP URI where you may
    name one (sip:bob@example.test). Administrators name another organizer's conference by its
    URI. The reply comes when the announcement is over."""
    word, text = _split(ctx)
    if len(text) > MAX_TEXT:
        raise UsageError(f"That is {len(text)} characters; at most {MAX_TEXT} are spoken.")
    announcer, sounds = _services(ctx)
    target = await _target(ctx, word)
    done = await announcer.announce(target, await sounds.speech(text))
    return f"Announced {_where(target, done)} ({done.seconds:.1f} s)."


@command(
    "play",
    usage="play <number|id|sip-uri> <clip>",
    example="play 1 chime",
    feature="play",
    takes_args=True,
)
async def play(ctx: CommandContext) -> str:
    """Play a sound clip in one of your conferences, then leave.
    <clip>: the name of a WAV file of the bot's clip folder, without '.wav'. The conference
    is named as for 'announce'. The reply comes when the clip is over."""
    word, name = _split(ctx)
    announcer, sounds = _services(ctx)
    target = await _target(ctx, word)
    done = await announcer.announce(target, await sounds.clip(name))
    return f"Played '{name}' {_where(target, done)} ({done.seconds:.1f} s)."


def _split(ctx: CommandContext) -> tuple[str, str]:
    word, _, rest = ctx.args.partition(" ")
    if not word or not rest.strip():
        raise UsageError()
    return word, rest.strip()


def _services(ctx: CommandContext) -> tuple[Announcer[Any], Sounds[Any]]:
    announcer, sounds = ctx.services.announcer, ctx.services.sounds
    if announcer is None or sounds is None:
        raise Refusal("Announcements are not set up on this bot.")
    return announcer, sounds


async def _target(ctx: CommandContext, word: str) -> Target:
    async def choose(number_or_id: str) -> Conference:
        try:
            return await chosen(replace(ctx, args=number_or_id))
        except UsageError as exc:
            if ctx.is_admin and str(exc).startswith("You have no conference"):
                raise UsageError(f"{exc} {CONFERENCE_URI_HINT}") from None
            raise

    return await resolve(
        word,
        sender=ctx.sender,
        is_admin=ctx.is_admin,
        settings=ctx.config.announcements,
        choose=choose,
    )


def _where(target: Target, done: Announced) -> str:
    """'in' a conference, 'to' a person."""
    joined = isinstance(target, Conference) or is_conference_uri(target)
    return f"{'in' if joined else 'to'} {done.where}"
