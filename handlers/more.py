"""more: the next page of a reply too long for one IM (bot.commands.replies)."""

from __future__ import annotations

from bot.commands import CommandContext, command
from bot.commands.replies import next_page


@command("more", aliases=("next",), usage="more")
async def more(ctx: CommandContext) -> str:
    """Show the rest of a long reply, a page at a time."""
    return next_page(ctx.memory) or "There is nothing more to show."
