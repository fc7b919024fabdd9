"""help: what the sender can do here."""

from __future__ import annotations

from bot.commands import CommandContext, UsageError, command
from bot.commands.registry import is_enabled, is_visible
from bot.commands.replies import shorten


@command(
    "help",
    aliases=("?", "commands"),
    usage="help [command]",
    example="help my meetings",
    feature="help",
    takes_args=True,
)
async def show_help(ctx: CommandContext) -> str:
    """List the commands you can use, or explain one of them."""
    features = ctx.config.features
    visible = [spec for spec in ctx.registry if is_visible(spec, features, admin=ctx.is_admin)]
    if ctx.args:
        wanted = ctx.args.lower()
        spec = next((s for s in visible if wanted in s.words), None)
        if spec is None:
            raise UsageError(f"There is no command '{shorten(ctx.args, 40)}'.")
        lines = [f"{spec.name}: {spec.summary}", f"Usage: {spec.usage}", f"Example: {spec.example}"]
        if spec.details:
            lines.insert(1, spec.details)
        return "\n".join(lines)
    lines = ["Commands:"]
    for spec in visible:
        note = "" if is_enabled(spec, features) else " (turned off)"
        lines.append(f"  {spec.usage} - {spec.summary}{note}")
    lines.append("Send 'help <command>' for details.")
    return "\n".join(lines)
