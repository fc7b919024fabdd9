"""A third-party command module, as a plug-in would be written (loaded by a test)."""

from bot.commands import CommandContext, command


@command("weather", usage="weather", example="weather")
async def weather(ctx: CommandContext) -> str:
    """Tell the weather (a plug-in example)."""
    return f"Sunny, {ctx.sender.user}."
