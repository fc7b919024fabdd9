"""status: how the bot is doing (administrators only)."""

from __future__ import annotations

from bot.commands import CommandContext, command


@command("status", usage="status", feature="status", admin_only=True)
async def status(ctx: CommandContext) -> str:
    """Uptime, registrations, open IM sessions, user endpoints and banned addresses."""
    facts = ctx.services.status()
    return "\n".join(f"{key}: {value}" for key, value in facts.items())
